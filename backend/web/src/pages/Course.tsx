import { useEffect, useState } from "preact/hooks";
import { ApiError, errorMessage } from "../api";
import { CertificatePanel } from "../components/CertificatePanel";
import { requestWalletConnection, UnsupportedChain } from "../components/wallet-ui";
import { Alert, Loading, PriceTag, TxStatus, useAsync, usePageTitle } from "../components/ui";
import { chainLabel, config, networkOf, networks, tokenByAddress, type NetworkInfo } from "../config";
import { formatDate, formatFiat, shortAddress } from "../format";
import { api } from "../api";
import { fetchAccess, fetchCourse, toProgress, type Access, type Course, type Price, type Progress } from "../models";
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

/** The course's prices on one chain it is listed on. */
export interface ChainOffer {
  network: NetworkInfo;
  onchainId: string | null;
  prices: Price[];
}

/** The course's prices on every configured chain where it is registered and listed (the
 * API's own chain first); `course` already holds the API's own chain's. */
export async function chainOffers(course: Course): Promise<ChainOffer[]> {
  const listed = networks().filter((n) => course.chains.some((c) => c.chainId === n.chainId && c.listed));
  const offers = await Promise.all(
    listed.map(async (network) => {
      const onChain = network.chainId === course.chainId ? course : await fetchCourse(course.id, network.chainId);
      return { network, onchainId: onChain.onchainId, prices: onChain.prices };
    }),
  );
  return offers.filter((o) => o.prices.length > 0);
}

const offerKey = (chainId: number, token: string) => `${chainId}:${token.toLowerCase()}`;

/** Prices grouped by chain: the native coin and tokens of each, with their symbols. */
function ChainPrices({ offers, course }: { offers: ChainOffer[]; course: Course }) {
  if (!offers.length && !course.fiat) return <p class="muted">Not for sale yet.</p>;
  return (
    <div class="chain-prices" aria-label="Prices">
      {offers.map((o) => (
        <section key={o.network.chainId} class="chain-offer" data-chain-id={o.network.chainId} aria-label={`Prices on ${o.network.chainName}`}>
          <h3 class="chain-name">On {o.network.chainName}</h3>
          <ul class="price-list">
            {o.prices.map((p) => (
              <li key={p.token} data-token={p.symbol}>
                <PriceTag price={p} />
              </li>
            ))}
          </ul>
        </section>
      ))}
      {course.fiat && (
        <ul class="price-list">
          <li data-token="card">
            {course.fiat.amount === 0n ? (
              <span class="price">Free</span>
            ) : (
              <>
                <span class="price">{formatFiat(course.fiat.amount, course.fiat.currency)}</span> <span class="muted">by card</span>
              </>
            )}
          </li>
        </ul>
      )}
    </div>
  );
}

function BuyPanel({ course }: { course: Course }) {
  const offers = useAsync(() => chainOffers(course), [course.id]);
  if (offers.loading && !offers.data) return <Loading label="Loading prices…" />;
  return <BuyPanelWithOffers course={course} offers={offers.data ?? []} offersError={offers.error} />;
}

function BuyPanelWithOffers({ course, offers, offersError }: { course: Course; offers: ChainOffer[]; offersError: string | null }) {
  const wallet = useStore(walletStore);
  const session = useStore(sessionStore);
  const address = session.user?.address ?? wallet.address ?? null;
  const [access, setAccess] = useState<Access | null>(null);
  const [progress, setProgress] = useState<Progress | null>(null);
  const [accessError, setAccessError] = useState<string | null>(null);
  const [tx, setTx] = useState<TxProgress>({ phase: "idle", message: "" });
  const [waitingAccess, setWaitingAccess] = useState(false);
  // Start on a price of the chain the wallet is on, else the first chain's.
  const firstOffer = offers.find((o) => o.network.chainId === wallet.chainId) ?? offers[0];
  const [selected, setSelected] = useState<string>(
    firstOffer?.prices[0] ? offerKey(firstOffer.network.chainId, firstOffer.prices[0].token) : "",
  );
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
  const [selectedChain, selectedToken] = selected.split(":");
  const chainId = Number(selectedChain);
  const network = networkOf(chainId);
  const token = tokenByAddress(selectedToken, chainId);
  const price = offers.find((o) => o.network.chainId === chainId)?.prices.find((p) => p.token.toLowerCase() === selectedToken);
  const busy = tx.phase === "working" || tx.phase === "wallet" || tx.phase === "pending" || waitingAccess;
  // The wallet is elsewhere: buying asks it to switch (or to add the chain) first.
  const needsSwitch = wallet.status === "connected" && wallet.chainId !== chainId;

  const buy = async () => {
    if (!token || !session.user || !network) return;
    setTx({ phase: "working", message: "Starting…", chainId });
    try {
      await buyWithCrypto(course.id, chainId, token, setTx);
      setWaitingAccess(true);
      const granted = await waitForAccess(course.id, session.user.address);
      setWaitingAccess(false);
      if (granted) {
        setAccess(await fetchAccess(course.id, session.user.address));
        setTx((t) => ({ ...t, phase: "confirmed", message: `Payment confirmed on ${chainLabel(chainId)}. The course is yours!` }));
      } else {
        setTx((t) => ({ ...t, phase: "confirmed", message: `Payment confirmed on ${chainLabel(chainId)}; access will appear in a moment. Reload later if it does not.` }));
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

  const acceptsCrypto = offers.length > 0;
  return (
    <div class="card buy-panel">
      <h2>Buy this course</h2>
      <ChainPrices offers={offers} course={course} />
      {offersError && <Alert kind="warning">{offersError}</Alert>}
      {accessError && <Alert kind="warning">{accessError}</Alert>}
      {!signedIn ? (
        <SignInStep what="buy this course" />
      ) : (
        <>
          {acceptsCrypto && (
            <fieldset class="token-choice" disabled={busy}>
              <legend>Pay with crypto</legend>
              {isWrongNetwork(wallet) && <UnsupportedChain chainId={wallet.chainId} target={network ?? null} />}
              {offers.map((o) => (
                <div key={o.network.chainId} class="chain-choice" role="radiogroup" aria-label={o.network.chainName} data-chain-id={o.network.chainId}>
                  <p class="chain-name">{o.network.chainName}</p>
                  {o.prices.map((p) => (
                    <label key={p.token} class="radio">
                      <input
                        type="radio"
                        name="pay-token"
                        value={offerKey(o.network.chainId, p.token)}
                        checked={selected === offerKey(o.network.chainId, p.token)}
                        onChange={() => setSelected(offerKey(o.network.chainId, p.token))}
                      />
                      <span>{p.symbol}</span> <PriceTag price={p} />
                    </label>
                  ))}
                </div>
              ))}
              {wallet.status !== "connected" ? (
                <button type="button" onClick={() => requestWalletConnection()}>
                  Connect wallet to pay
                </button>
              ) : (
                <button type="button" class="buy-button" onClick={buy} disabled={busy || !token || !network} data-testid="buy-crypto">
                  {buyLabel(price, token?.symbol, needsSwitch ? network : undefined)}
                </button>
              )}
              {needsSwitch && network && !isWrongNetwork(wallet) && (
                <p class="muted small" data-testid="switch-hint">
                  Your wallet is on {chainLabel(wallet.chainId)}; it will be asked to switch to {network.chainName} first.
                </p>
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

function buyLabel(price: Price | undefined, symbol: string | undefined, switchTo: NetworkInfo | undefined): string {
  const what = price && price.amount === 0n ? "get it free" : `buy with ${symbol ?? "crypto"}`;
  if (switchTo) return `Switch to ${switchTo.chainName} and ${what}`;
  return what.charAt(0).toUpperCase() + what.slice(1);
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
  if (isWrongNetwork(wallet)) return <UnsupportedChain chainId={wallet.chainId} target={null} />;
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
