import { useEffect, useState } from "preact/hooks";
import { api, ApiError, errorMessage } from "../api";
import { CertificatePanel } from "../components/CertificatePanel";
import { RequireSignIn } from "../components/wallet-ui";
import { Alert, Loading, useAsync, usePageTitle } from "../components/ui";
import { fetchCourse, toLesson, toProgress, type Progress } from "../models";
import { Link } from "../router";
import { sessionStore } from "../session";
import { useStore } from "../store";
import { Description } from "./Course";

export function LessonPage({ id, n }: { id: string; n: string }) {
  return (
    <RequireSignIn what="open this lesson" title={`Lesson ${n}`}>
      <LessonView id={id} n={Number(n)} />
    </RequireSignIn>
  );
}

function LessonView({ id, n }: { id: string; n: number }) {
  const session = useStore(sessionStore);
  const course = useAsync(() => fetchCourse(id), [id]);
  const lesson = useAsync(async () => toLesson(await api<Record<string, unknown>>(`/courses/${id}/lessons/${n}`), n), [id, n, session.user?.address]);
  const [progress, setProgress] = useState<Progress | null>(null);
  const [completing, setCompleting] = useState(false);
  const [error, setError] = useState<string | null>(null);
  usePageTitle(lesson.data?.title ?? "Lesson");

  useEffect(() => {
    setError(null);
    api<Record<string, unknown>>(`/courses/${id}/progress`)
      .then((raw) => setProgress(toProgress(raw)))
      .catch(() => setProgress(null));
  }, [id, n]);

  const total = course.data?.lessonCount || lesson.data?.total || 0;
  const done = Boolean(lesson.data?.completed || progress?.completedLessons.includes(n));

  const complete = async () => {
    setCompleting(true);
    setError(null);
    try {
      const raw = await api<Record<string, unknown>>(`/courses/${id}/lessons/${n}/complete`, { method: "POST", body: {} });
      const p = toProgress(raw) ?? progress;
      const fresh = await api<Record<string, unknown>>(`/courses/${id}/progress`).then(toProgress).catch(() => p);
      setProgress(fresh ?? p);
      lesson.reload();
    } catch (err) {
      setError(errorMessage(err));
    } finally {
      setCompleting(false);
    }
  };

  if (lesson.loading && !lesson.data) return <Loading label="Loading the lesson…" />;
  if (lesson.error) {
    const notEntitled = lesson.error && /entitled|access|purchase|buy/i.test(lesson.error);
    return (
      <section class="card">
        <h1 tabIndex={-1}>Lesson {n}</h1>
        <Alert kind={notEntitled ? "warning" : "error"}>{lesson.error}</Alert>
        <p>
          <Link href={`/courses/${id}`} class="button">
            {notEntitled ? "Buy the course to open it" : "Back to the course"}
          </Link>
        </p>
      </section>
    );
  }
  const l = lesson.data;
  if (!l) return null;
  const courseCompleted = Boolean(progress?.courseCompleted);
  return (
    <div class="lesson-layout">
      <nav class="lesson-nav" aria-label="Lessons">
        <p>
          <Link href={`/courses/${id}`}>{course.data?.title ?? "Course"}</Link>
        </p>
        {course.data && (
          <ol>
            {course.data.lessons.map((item) => (
              <li key={item.position} class={item.position === n ? "current" : ""}>
                <Link href={`/courses/${id}/lessons/${item.position}`} aria-current={item.position === n ? "page" : undefined}>
                  {item.title}
                </Link>{" "}
                {progress?.completedLessons.includes(item.position) && <span class="check" role="img" aria-label="completed">✓</span>}
              </li>
            ))}
          </ol>
        )}
        {progress && progress.total > 0 && (
          <p>
            <label for="lesson-progress">Progress</label>{" "}
            <progress id="lesson-progress" max={progress.total} value={progress.completed} /> {progress.completed}/{progress.total}
          </p>
        )}
      </nav>
      <article class="lesson card" data-testid="lesson">
        <p class="muted">
          Lesson {n}
          {total ? ` of ${total}` : ""}
        </p>
        <h1 tabIndex={-1}>{l.title}</h1>
        <Description text={l.body} />
        {error && <Alert>{error}</Alert>}
        <div class="lesson-actions">
          {done ? (
            <p class="success-text" role="status" data-testid="lesson-done">
              ✓ Completed
            </p>
          ) : (
            <button type="button" onClick={complete} disabled={completing} data-testid="complete-lesson">
              {completing ? "Saving…" : "Mark as complete"}
            </button>
          )}
          <span class="spacer" />
          {n > 1 && (
            <Link class="button button-secondary" href={`/courses/${id}/lessons/${n - 1}`}>
              ← Previous
            </Link>
          )}
          {total > n && (
            <Link class="button button-secondary" href={`/courses/${id}/lessons/${n + 1}`}>
              Next →
            </Link>
          )}
        </div>
        {courseCompleted && (
          <div class="course-complete" role="status">
            <h2>Course completed</h2>
          </div>
        )}
        {courseCompleted && course.data && (
          <CertificatePanel courseId={course.data.id} onchainCourseId={course.data.onchainId} courseCompleted={courseCompleted} mode={course.data.certificateMode} />
        )}
      </article>
    </div>
  );
}

export function isNotEntitled(err: unknown): boolean {
  return err instanceof ApiError && (err.code === "not_entitled" || err.status === 403);
}
