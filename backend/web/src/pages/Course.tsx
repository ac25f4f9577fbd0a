import { useEffect, useState } from "preact/hooks";
import { ApiError, errorMessage } from "../api";
import { CertificatePanel } from "../components/CertificatePanel";
import { requestWalletConnection } from "../components/wallet-ui";
import { Alert, Loading, PriceList, PriceTag, TxStatus, useAsync, usePageTitle } from "../components/ui";
import { config, tokenByAddress } from "../config";
import { formatDate, formatFiat, shortAddress } from "../format";
import { api } from "../api";
import { fetchAccess, fetchCourse, toProgress, type Access, type Course, type Progress } from "../models";
import { buyWithCrypto, startCardCheckout, waitForAccess, type TxProgress } from "../purchase";
import { Link } from "../router";
import { sessionMismatch, sessionStore, signIn } from "../session";
import { useStore } from "../store";
import { isWrongNetwork, walletStore } from "../wallet";

export function CoursePage({ id }: { id: string }) {
  const course = useAsync(() => fetchCourse(id), [id]);
  usePageTitle(course.data?.title ?? "Course");
  if (course.loading && !course.data) return <Loading label="Loading the course…" />;
  if (course.error) return <Alert>{course.error}</Alert>;
  if (!course.data) return null;
  const c = course.data;
  return (
    <article class="course-page" data-course-id={c.id}>
      <div class="course-main">
        <p class="breadcrumb">
          <Link href="/">Courses</Link> ›
        </p>
        <h1 tabIndex={-1}>{c.title}</h1>
        {c.provider && (
          <p class="muted">
            By <code title={c.provider}>{shortAddress(c.provider)}</code>
            {c.refundWindow > 0 && <> · refundable for {Math.round(c.refundWindow / 86400)} days after purchase</>}
          </p>
        )}
        <Description text={c.description} />
        <section aria-labelledby="outline-title">
          <h2 id="outline-title">Lessons</h2>
          {c.lessons.length === 0 ? (
            <p class="muted">The outline is coming soon.</p>
          ) : (
            <ol class="lesson-outline">
              {c.lessons.map((l) => (
                <li key={l.position}>{l.title}</li>
              ))}
            </ol>
          )}
        </section>
      </div>
      <aside class="course-side" aria-label="Buy or open this course">
        <BuyPanel course={c} />
      </aside>
    </article>
  );
}

export function Description({ text }: { text: string }) {
  const paragraphs = text.split(/\n\s*\n/).filter((p) => p.trim());
  return (
    <div class="prose">
      {paragraphs.map((p, i) => (
        <p key={i}>{p}</p>
      ))}
    </div>
  );
}

function BuyPanel({ course }: { course: Course }) {
  const wallet = useStore(walletStore);
  const session = useStore(sessionStore);
  const address = session.user?.address ?? wallet.address ?? null;
  const [access, setAccess] = useState<Access | null>(null);
  const [progress, setProgress] = useState<Progress | null>(null);
  const [accessError, setAccessError] = useState<string | null>(null);
  const [tx, setTx] = useState<TxProgress>({ phase: "idle", message: "" });
  const [waitingAccess, setWaitingAccess] = useState(false);
  const [selected, setSelected] = useState<string>(course.prices[0]?.token ?? "");
  const [cardError, setCardError] = useState<string | null>(null);
  const [cardBusy, setCardBusy] = useState(false);

  useEffect(() => {
    setAccess(null);
    setAccessError(null);
    if (!address) return;
    let cancelled = false;
    fetchAccess(course.id, address)
      .then((a) => !cancelled && setAccess(a))
      .catch((err) => !cancelled && setAccessError(errorMessage(err)));
    return () => {
      cancelled = true;
    };
  }, [course.id, address]);

  useEffect(() => {
    if (!access?.hasAccess || !session.user) return;
    api<Record<string, unknown>>(`/courses/${course.id}/progress`)
      .then((raw) => setProgress(toProgress(raw)))
      .catch(() => setProgress(null));
  }, [access?.hasAccess, session.user, course.id]);

  const signedIn = Boolean(session.user) && !sessionMismatch();
  const wrongNetwork = isWrongNetwork(wallet);
  const token = tokenByAddress(selected);
  const price = course.prices.find((p) => p.token === selected);
  const busy = tx.phase === "working" || tx.phase === "wallet" || tx.phase === "pending" || waitingAccess;

  const buy = async () => {
    if (!token || !session.user) return;
    setTx({ phase: "working", message: "Starting…" });
    try {
      await buyWithCrypto(course.id, token, setTx);
      setWaitingAccess(true);
      const granted = await waitForAccess(course.id, session.user.address);
      setWaitingAccess(false);
      if (granted) {
        setAccess(await fetchAccess(course.id, session.user.address));
        setTx((t) => ({ ...t, phase: "confirmed", message: "Payment confirmed on-chain. The course is yours!" }));
      } else {
        setTx((t) => ({ ...t, phase: "confirmed", message: "Payment confirmed on-chain; access will appear in a moment. Reload later if it does not." }));
      }
    } catch (err) {
      setWaitingAccess(false);
      setTx((t) => ({ ...t, phase: "failed", message: errorMessage(err) }));
    }
  };

  const claimFree = async () => {
    setCardError(null);
    setCardBusy(true);
    try {
      await api(`/courses/${course.id}/claim`, { method: "POST", body: {} });
      if (session.user) setAccess(await fetchAccess(course.id, session.user.address));
    } catch (err) {
      setCardError(errorMessage(err));
    } finally {
      setCardBusy(false);
    }
  };

  const payByCard = async () => {
    setCardError(null);
    setCardBusy(true);
    try {
      await startCardCheckout(course.id);
    } catch (err) {
      setCardBusy(false);
      setCardError(err instanceof ApiError ? err.message : errorMessage(err));
    }
  };

  if (access?.hasAccess) {
    const next = nextLesson(progress, course.lessonCount);
    return (
      <div class="card buy-panel owned" data-testid="owned">
        <h2>You have this course</h2>
        <p class="muted">
          Access {access.source ? `by ${sourceLabel(access.source)}` : ""} {access.since ? `since ${formatDate(access.since)}` : ""}
        </p>
        {tx.phase === "confirmed" && <TxStatus progress={tx} />}
        {progress && progress.total > 0 && (
          <p>
            <label for="course-progress">Progress</label>{" "}
            <progress id="course-progress" max={progress.total} value={progress.completed}>
              {progress.completed}/{progress.total}
            </progress>{" "}
            {progress.completed}/{progress.total} lessons
          </p>
        )}
        {course.lessonCount > 0 && (
          <Link class="button" href={`/courses/${course.id}/lessons/${next}`}>
            {progress?.courseCompleted ? "Review the lessons" : progress && progress.completed > 0 ? "Continue learning" : "Start learning"}
          </Link>
        )}
        {signedIn && (
          <CertificatePanel courseId={course.id} onchainCourseId={course.onchainId} courseCompleted={Boolean(progress?.courseCompleted)} mode={course.certificateMode} />
        )}
      </div>
    );
  }

  const acceptsCrypto = course.prices.length > 0;
  return (
    <div class="card buy-panel">
      <h2>Buy this course</h2>
      <PriceList course={course} />
      {accessError && <Alert kind="warning">{accessError}</Alert>}
      {!signedIn ? (
        <SignInStep what="buy this course" />
      ) : (
        <>
          {acceptsCrypto && (
            <fieldset class="token-choice" disabled={busy || wrongNetwork}>
              <legend>Pay with crypto</legend>
              {course.prices.map((p) => (
                <label key={p.token} class="radio">
                  <input
                    type="radio"
                    name="pay-token"
                    value={p.token}
                    checked={selected === p.token}
                    onChange={() => setSelected(p.token)}
                  />
                  <span>{p.symbol}</span> <PriceTag price={p} />
                </label>
              ))}
              {wallet.status !== "connected" ? (
                <button type="button" onClick={() => requestWalletConnection()}>
                  Connect wallet to pay
                </button>
              ) : (
                <button type="button" class="buy-button" onClick={buy} disabled={busy || !token || wrongNetwork} data-testid="buy-crypto">
                  {price && price.amount === 0n ? "Get it free" : `Buy with ${token?.symbol ?? "crypto"}`}
                </button>
              )}
              {token && !token.native && (
                <p class="muted small">
                  {token.symbol} payments use a gasless permit signature when the token supports it; otherwise you approve
                  exactly this price first.
                </p>
              )}
            </fieldset>
          )}
          <TxStatus progress={tx} />
          {waitingAccess && (
            <p role="status" class="small">
              <span class="spinner" aria-hidden="true" /> Unlocking the course (waiting for the purchase to be indexed)…
            </p>
          )}
          {course.fiat && course.fiat.amount === 0n && (
            <div class="card-payment">
              <button type="button" onClick={claimFree} disabled={cardBusy || busy} data-testid="claim-free">
                {cardBusy ? "Enrolling…" : "Enroll for free"}
              </button>
              {cardError && <Alert>{cardError}</Alert>}
            </div>
          )}
          {course.fiat && course.fiat.amount > 0n && config().stripeEnabled && (
            <div class="card-payment">
              <h3>Pay by card</h3>
              <button type="button" class="button-secondary" onClick={payByCard} disabled={cardBusy || busy} data-testid="buy-card">
                {cardBusy ? "Opening checkout…" : `Pay ${formatFiat(course.fiat.amount, course.fiat.currency)} by card`}
              </button>
              <p class="muted small">Secure checkout by Stripe. Access goes to your signed-in address.</p>
              {cardError && <Alert>{cardError}</Alert>}
            </div>
          )}
        </>
      )}
    </div>
  );
}

function SignInStep({ what }: { what: string }) {
  const wallet = useStore(walletStore);
  const session = useStore(sessionStore);
  const [error, setError] = useState<string | null>(null);
  if (wallet.status !== "connected") {
    return (
      <div class="sign-in-step">
        <p>Connect your wallet and sign in to {what}.</p>
        <button type="button" onClick={() => requestWalletConnection()}>
          Connect wallet
        </button>
      </div>
    );
  }
  if (isWrongNetwork(wallet)) return <p>Switch your wallet to {config().chainName} to continue.</p>;
  return (
    <div class="sign-in-step">
      <p>Sign in with Ethereum to {what}: a free signature, no transaction.</p>
      <button
        type="button"
        disabled={session.signingIn}
        onClick={async () => {
          setError(null);
          try {
            await signIn();
          } catch (err) {
            setError(errorMessage(err));
          }
        }}
      >
        {session.signingIn ? "Check your wallet…" : "Sign in with Ethereum"}
      </button>
      {error && <Alert>{error}</Alert>}
    </div>
  );
}

function nextLesson(progress: Progress | null, total: number): number {
  if (!progress || total === 0) return 1;
  for (let n = 1; n <= total; n++) if (!progress.completedLessons.includes(n)) return n;
  return 1;
}

export function sourceLabel(source: string): string {
  switch (source) {
    case "crypto":
    case "purchase":
      return "crypto purchase";
    case "card":
      return "card payment";
    case "free":
      return "free enrolment";
    case "grant":
      return "grant";
    default:
      return source;
  }
}
