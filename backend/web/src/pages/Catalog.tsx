import { Link } from "../router";
import { fetchCourses } from "../models";
import { Alert, Loading, PriceList, useAsync, usePageTitle } from "../components/ui";

export function CatalogPage() {
  usePageTitle("Courses");
  const courses = useAsync(() => fetchCourses(), []);
  return (
    <>
      <section class="hero">
        <h1 tabIndex={-1}>Learn, pay your way, prove it on-chain</h1>
        <p>
          Buy courses with ETH, ESN or USDC from your wallet, or by card. Finish a course and get a soulbound certificate
          that anyone can verify from the chain.
        </p>
      </section>
      <section aria-labelledby="catalog-title">
        <h2 id="catalog-title">Courses</h2>
        {courses.loading && <Loading label="Loading courses…" />}
        {courses.error && <Alert>{courses.error}</Alert>}
        {courses.data && courses.data.length === 0 && <p>No courses yet. Providers can publish one from the Teach page.</p>}
        {courses.data && courses.data.length > 0 && (
          <ul class="course-grid">
            {courses.data.map((course) => (
              <li key={course.id} class="card course-card" data-course-id={course.id}>
                <h3>
                  <Link href={`/courses/${course.id}`}>{course.title}</Link>
                </h3>
                <p class="course-summary">{summary(course.description)}</p>
                <p class="muted">
                  {course.lessonCount} {course.lessonCount === 1 ? "lesson" : "lessons"}
                </p>
                <PriceList course={course} />
              </li>
            ))}
          </ul>
        )}
      </section>
    </>
  );
}

function summary(text: string): string {
  const first = text.split(/\n\s*\n/)[0] ?? "";
  return first.length > 180 ? `${first.slice(0, 177)}…` : first;
}
