// Provider dashboard: create a course (metadata through the API; on-chain registration and token
// prices signed by the provider's wallet from the API's tx endpoints), card price, certificate
// mode, sales across both rails, balances per token, withdrawals and the payout ledger.
import { useCallback, useEffect, useState } from "preact/hooks";
import { getAddress, parseEventLogs, type Hex } from "viem";
import { api, errorMessage, itemsOf } from "../api";
import { marketAbi } from "../chain";
import { IssuedCertificateRow, revocationPending, type IssuedCertificate } from "../components/RevokeCertificate";
import { RequireSignIn } from "../components/wallet-ui";
import { Alert, Loading, PriceList, TxHash, TxStatus, useAsync, useInterval, usePageTitle } from "../components/ui";
import { chainLabel, config, networks, tokenByAddress, type NetworkInfo, type TokenInfo } from "../config";
import { fiatDigits, formatDate, formatFiat, formatToken, parseFiatInput, parseTokenInput } from "../format";
import { fetchPayouts, toCourse, toOrder, type Course, type Payout, type PayoutPage } from "../models";
import { sendAndWait, type TxProgress } from "../purchase";
import { Link } from "../router";
import { sessionStore } from "../session";
import { useStore } from "../store";
import { OrdersTable } from "./Account";

type Raw = Record<string, any>;

interface TxData {
  to: string;
  data: Hex;
  value?: string;
  chainId?: number;
}

/** The transaction the API built, for the chain it was built for (`chainId` when it names none). */
function txRequest(tx: TxData, chainId?: number) {
  return { to: getAddress(tx.to), data: tx.data, value: tx.value ?? "0", chainId: tx.chainId ?? chainId };
}

/** One course as one chain sees it (its on-chain id and prices there). */
interface CourseOnChainView {
  network: NetworkInfo;
  course: Course | undefined;
}

/** My courses on every configured chain: the API's own chain's list, each course with its view
 * from every chain. */
async function fetchMyCourses(): Promise<Array<{ course: Course; chains: CourseOnChainView[] }>> {
  const perChain = await Promise.all(
    networks().map(async (network) => ({
      network,
      courses: (await api<Raw[]>("/provider/courses", { query: { chainId: network.chainId } })).map((c) => toCourse(c, network.chainId)),
    })),
  );
  const [own, ...others] = perChain;
  return (own?.courses ?? []).map((course) => ({
    course,
    chains: [
      { network: own.network, course },
      ...others.map((o) => ({ network: o.network, course: o.courses.find((c) => c.id === course.id) })),
    ],
  }));
}

export function ProviderPage() {
  usePageTitle("Teach on Tuition");
  return (
    <>
      <h1 tabIndex={-1}>Provider dashboard</h1>
      <RequireSignIn what="manage your courses">
        <Dashboard />
      </RequireSignIn>
    </>
  );
}

/** A withdrawal this page sent, awaited in the payout ledger. */
interface Withdrawal {
  hash: string;
  at: number;
}

function Dashboard() {
  const session = useStore(sessionStore);
  const [withdrawal, setWithdrawal] = useState<Withdrawal | null>(null);
  const courses = useAsync(fetchMyCourses, [session.user?.address]);
  return (
    <div class="provider">
      <p class="muted">
        Payouts go to your wallet <code>{session.user?.address}</code>. Course metadata lives on Tuition; registration and
        token prices live on-chain and are signed by your wallet.
      </p>
      <div class="provider-grid">
        <CreateCourse onCreated={courses.reload} />
        <Balances onWithdrawn={(hash) => setWithdrawal({ hash, at: Date.now() })} />
      </div>
      {config().stripeEnabled && <CardPayouts />}
      {session.user?.address && <PublicRecord address={session.user.address} />}
      <section aria-labelledby="my-courses-title">
        <h2 id="my-courses-title">Your courses</h2>
        {courses.loading && !courses.data && <Loading />}
        {courses.error && <Alert>{courses.error}</Alert>}
        {courses.data?.length === 0 && <p>No courses yet: create your first one above.</p>}
        <ul class="card-list provider-courses">
          {courses.data?.map(({ course, chains }) => (
            <li key={course.id}>
              <ManageCourse course={course} chains={chains} onChange={courses.reload} />
            </li>
          ))}
        </ul>
      </section>
      <Sales />
      <IssuedCertificates />
      <Payouts key={session.user?.address} awaiting={withdrawal} />
    </div>
  );
}

// ------------------------------------------------------------------ card payouts (Stripe Connect)

interface ConnectAccount {
  status: "none" | "onboarding" | "ready";
  stripeAccountId: string | null;
  chargesEnabled: boolean;
  payoutsEnabled: boolean;
  requirementsDue: string[];
}

/** My Stripe Connect account: card sales are paid out to it once Stripe's onboarding is done. */
function CardPayouts() {
  const account = useAsync(() => api<ConnectAccount>("/provider/connect"), []);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const onboard = async () => {
    setError(null);
    setBusy(true);
    try {
      const { url } = await api<{ url: string }>("/provider/connect/onboarding", { method: "POST" });
      window.location.assign(url); // Stripe's onboarding form; it returns to this page
    } catch (err) {
      setError(errorMessage(err));
      setBusy(false);
    }
  };
  const state = account.data;
  return (
    <section class="card card-payouts" aria-labelledby="card-payouts-title" data-testid="card-payouts">
      <h2 id="card-payouts-title">Card payouts</h2>
      {account.loading && !state && <Loading />}
      {account.error && <Alert>{account.error}</Alert>}
      {state?.status === "none" && (
        <p>Card sales reach you through Stripe. Set up a Stripe account to be paid for them.</p>
      )}
      {state?.status === "onboarding" && (
        <p data-testid="connect-status">
          Stripe still needs some details before paying you out
          {state.requirementsDue.length > 0 && ` (${state.requirementsDue.length} items)`}.
        </p>
      )}
      {state?.status === "ready" && (
        <>
          <p data-testid="connect-status">
            Ready: card sales are paid to your Stripe account <code>{state.stripeAccountId}</code>
            {state.payoutsEnabled ? ", with payouts to your bank enabled." : "."}
          </p>
          <CardBalance />
        </>
      )}
      {state && state.status !== "ready" && (
        <button type="button" class="button" disabled={busy} onClick={onboard}>
          {state.status === "none" ? "Set up card payouts" : "Continue Stripe onboarding"}
        </button>
      )}
      {error && <Alert>{error}</Alert>}
    </section>
  );
}

interface Money {
  amount: string;
  currency: string;
}

interface CardBalanceData {
  pending: Money[];
  available: Money[];
  payouts: { id: string; amount: string; currency: string; status: string; arrivalDate: string }[];
}

/** Card revenue at Stripe, per currency (minor units from the API, formatted here), and the
 * latest payouts to the provider's bank. */
function CardBalance() {
  const balance = useAsync(() => api<CardBalanceData>("/provider/card-balance"), []);
  const data = balance.data;
  const currencies = [...new Set([...(data?.pending ?? []), ...(data?.available ?? [])].map((m) => m.currency))];
  const amountOf = (rows: Money[], currency: string) => rows.find((m) => m.currency === currency)?.amount ?? "0";
  return (
    <div data-testid="card-balance">
      {balance.loading && !data && <Loading />}
      {balance.error && <Alert>{balance.error}</Alert>}
      {data && currencies.length === 0 && <p>No card revenue yet.</p>}
      {data && currencies.length > 0 && (
        <div class="table-wrap" tabIndex={0} role="region" aria-label="Card balance per currency">
          <table class="data-table">
            <thead>
              <tr>
                <th scope="col">Currency</th>
                <th scope="col" class="num">
                  Pending
                </th>
                <th scope="col" class="num">
                  Available
                </th>
              </tr>
            </thead>
            <tbody>
              {currencies.map((currency) => (
                <tr key={currency} data-testid={`card-balance-${currency}`}>
                  <th scope="row">{currency.toUpperCase()}</th>
                  <td class="num">{formatFiat(amountOf(data.pending, currency), currency)}</td>
                  <td class="num">{formatFiat(amountOf(data.available, currency), currency)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {data && data.payouts.length > 0 && (
        <>
          <h3>Payouts to your bank</h3>
          <ul class="card-payout-list">
            {data.payouts.map((p) => (
              <li key={p.id} data-testid="card-payout">
                {formatFiat(p.amount, p.currency)} · {p.status} · arrives {formatDate(p.arrivalDate)}
              </li>
            ))}
          </ul>
        </>
      )}
      <button type="button" class="button-link" onClick={balance.reload}>
        Refresh
      </button>
    </div>
  );
}

// ------------------------------------------------------------------ public record

interface ProviderRecord {
  name: string;
  domain: string;
  verified: boolean;
  verifiedAt: string | null;
}

/** The name and website verifiers see for my certificates, set on-chain by my wallet. */
function PublicRecord({ address }: { address: string }) {
  // Each chain's certificate contract holds its own record of the provider.
  const [chainId, setChainId] = useState(config().chainId);
  const record = useAsync(async () => {
    try {
      return await api<ProviderRecord>(`/providers/${address}`, { query: { chainId } });
    } catch (err) {
      if ((err as { status?: number }).status === 404) return null;
      throw err;
    }
  }, [address, chainId]);
  const [name, setName] = useState("");
  const [domain, setDomain] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [progress, setProgress] = useState<TxProgress>({ phase: "idle", message: "" });
  const [sent, setSent] = useState<{ name: string; domain: string } | null>(null);
  const current = record.data;
  const mirrored = sent !== null && current?.name === sent.name && current?.domain === sent.domain;
  useInterval(record.reload, 2000, sent !== null && !mirrored); // until the indexer has seen it

  const submit = async (event: Event) => {
    event.preventDefault();
    setError(null);
    try {
      const tx = await api<TxData>("/provider/profile/tx", { method: "POST", body: { name, domain }, query: { chainId } });
      await sendAndWait(txRequest(tx, chainId), "Publish record", setProgress);
      setSent({ name: name.trim(), domain: domain.trim().toLowerCase() });
    } catch (err) {
      setError(errorMessage(err));
      setProgress({ phase: "idle", message: "" });
    }
  };
  const busy = progress.phase === "working" || progress.phase === "wallet" || progress.phase === "pending";
  return (
    <section class="card" aria-labelledby="record-title" data-testid="public-record">
      <h2 id="record-title">Public record</h2>
      <p class="muted">
        What verifiers see next to your certificates: your name and website, and whether the platform has verified them.
        Changing them removes the verification until the platform verifies them again.
      </p>
      {networks().length > 1 && (
        <div class="field">
          <label for="record-chain">Chain</label>
          <select
            id="record-chain"
            value={String(chainId)}
            onChange={(e) => {
              setSent(null);
              setProgress({ phase: "idle", message: "" });
              setChainId(Number((e.currentTarget as HTMLSelectElement).value));
            }}
          >
            {networks().map((n) => (
              <option key={n.chainId} value={String(n.chainId)}>
                {n.chainName}
              </option>
            ))}
          </select>
        </div>
      )}
      {record.loading && !record.data && <Loading />}
      {current ? (
        <p data-testid="record-current">
          <strong>{current.name}</strong> · {current.domain} ·{" "}
          <span data-testid="record-verified">{current.verified ? "verified by the platform" : "not verified yet"}</span>
        </p>
      ) : (
        !record.loading && <p>No public record yet.</p>
      )}
      {sent && !mirrored && (
        <p role="status">
          <span class="spinner" aria-hidden="true" /> Published. Waiting for the chain to confirm it…
        </p>
      )}
      <form onSubmit={submit} noValidate>
        <div class="field">
          <label for="record-name">Name</label>
          <input id="record-name" value={name} maxLength={64} onInput={(e) => setName((e.currentTarget as HTMLInputElement).value)} />
        </div>
        <div class="field">
          <label for="record-domain">Website domain</label>
          <input id="record-domain" value={domain} placeholder="school.example" onInput={(e) => setDomain((e.currentTarget as HTMLInputElement).value)} />
        </div>
        {error && <Alert>{error}</Alert>}
        <button type="submit" disabled={busy}>
          Publish on-chain
        </button>
      </form>
      <TxStatus progress={progress} testId="record-status" />
    </section>
  );
}

// ------------------------------------------------------------------ create

interface LessonDraft {
  title: string;
  body: string;
}

function CreateCourse({ onCreated }: { onCreated: () => void }) {
  const [title, setTitle] = useState("");
  const [description, setDescription] = useState("");
  const [refundDays, setRefundDays] = useState("14");
  const [lessons, setLessons] = useState<LessonDraft[]>([{ title: "", body: "" }]);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [created, setCreated] = useState<string | null>(null);

  const setLesson = (i: number, patch: Partial<LessonDraft>) =>
    setLessons((ls) => ls.map((l, j) => (j === i ? { ...l, ...patch } : l)));

  const submit = async (event: Event) => {
    event.preventDefault();
    setError(null);
    setCreated(null);
    const days = Number(refundDays);
    if (!title.trim()) return setError("Give the course a title.");
    if (new TextEncoder().encode(title.trim()).length > 100) return setError("The title is at most 100 bytes (an on-chain limit).");
    if (!Number.isInteger(days) || days < 0 || days > 30) return setError("The refund window is 0 to 30 days.");
    const filled = lessons.filter((l) => l.title.trim());
    setBusy(true);
    try {
      const course = await api<Raw>("/provider/courses", {
        method: "POST",
        body: { title: title.trim(), description, refundWindow: days * 86400 },
      });
      for (let i = 0; i < filled.length; i++) {
        await api(`/provider/courses/${course.id}/lessons/${i + 1}`, {
          method: "PUT",
          body: { title: filled[i].title.trim(), body: filled[i].body },
        });
      }
      setCreated(String(course.title));
      setTitle("");
      setDescription("");
      setLessons([{ title: "", body: "" }]);
      onCreated();
    } catch (err) {
      setError(errorMessage(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <form class="card create-course" onSubmit={submit} aria-labelledby="create-title" noValidate>
      <h2 id="create-title">Create a course</h2>
      <div class="field">
        <label for="course-title">Title</label>
        <input id="course-title" value={title} maxLength={100} required onInput={(e) => setTitle((e.currentTarget as HTMLInputElement).value)} />
      </div>
      <div class="field">
        <label for="course-description">Description</label>
        <textarea id="course-description" rows={4} value={description} onInput={(e) => setDescription((e.currentTarget as HTMLTextAreaElement).value)} />
      </div>
      <div class="field">
        <label for="course-refund">Refund window (days)</label>
        <input id="course-refund" type="number" min={0} max={30} inputMode="numeric" value={refundDays} onInput={(e) => setRefundDays((e.currentTarget as HTMLInputElement).value)} />
      </div>
      <fieldset>
        <legend>Lessons</legend>
        {lessons.map((l, i) => (
          <div class="lesson-draft" key={i}>
            <div class="field">
              <label for={`lesson-title-${i}`}>Lesson {i + 1} title</label>
              <input id={`lesson-title-${i}`} value={l.title} onInput={(e) => setLesson(i, { title: (e.currentTarget as HTMLInputElement).value })} />
            </div>
            <div class="field">
              <label for={`lesson-body-${i}`}>Lesson {i + 1} content</label>
              <textarea id={`lesson-body-${i}`} rows={3} value={l.body} onInput={(e) => setLesson(i, { body: (e.currentTarget as HTMLTextAreaElement).value })} />
            </div>
          </div>
        ))}
        <button type="button" class="button-secondary button-small" onClick={() => setLessons((ls) => [...ls, { title: "", body: "" }])}>
          Add a lesson
        </button>
      </fieldset>
      {error && <Alert>{error}</Alert>}
      {created && <Alert kind="success">“{created}” was created as a draft. Register it on-chain and set its prices below.</Alert>}
      <button type="submit" disabled={busy}>
        {busy ? "Creating…" : "Create draft"}
      </button>
    </form>
  );
}

// ------------------------------------------------------------------ manage one course

function ManageCourse({ course, chains, onChange }: { course: Course; chains: CourseOnChainView[]; onChange: () => void }) {
  const [error, setError] = useState<string | null>(null);
  const registered = chains.filter((v) => v.course?.onchainId);

  const setStatus = async (status: "published" | "draft" | "delisted") => {
    setError(null);
    try {
      await api(`/provider/courses/${course.id}`, { method: "PATCH", body: { status } });
      onChange();
    } catch (err) {
      setError(errorMessage(err));
    }
  };

  return (
    <article class="card manage-course" data-course-id={course.id} aria-labelledby={`pc-${course.id}`}>
      <h3 id={`pc-${course.id}`}>
        {course.status === "published" ? <Link href={`/courses/${course.id}`}>{course.title}</Link> : course.title}
      </h3>
      <p class="muted small">
        <span class={`badge badge-${course.status}`}>{course.status}</span>{" "}
        {registered.length ? <>on-chain on {registered.map((v) => v.network.chainName).join(", ")}</> : "not on-chain yet"} ·{" "}
        {course.lessonCount} lessons
        {course.fiat && <> · by card {formatFiat(course.fiat.amount, course.fiat.currency)}</>}
      </p>
      {chains.map((view) => (
        <CourseOnChain key={view.network.chainId} course={course} view={view} onChange={onChange} />
      ))}
      <FiatPriceForm course={course} onChange={onChange} />
      <CertificateModeForm course={course} onChange={onChange} />
      <div class="button-row">
        {course.status !== "published" ? (
          <button type="button" class="button-small" onClick={() => setStatus("published")} disabled={!registered.length && !course.fiat}>
            Publish
          </button>
        ) : (
          <button type="button" class="button-secondary button-small" onClick={() => setStatus("delisted")}>
            Unpublish
          </button>
        )}
      </div>
      {error && <Alert>{error}</Alert>}
    </article>
  );
}

/** A course on one chain: register it there (a transaction from the provider's wallet, which is
 * switched to that chain first), then set its token prices there. */
function CourseOnChain({ course, view, onChange }: { course: Course; view: CourseOnChainView; onChange: () => void }) {
  const { network } = view;
  const chainId = network.chainId;
  const onChain = view.course;
  const [tx, setTx] = useState<TxProgress>({ phase: "idle", message: "" });
  const busy = tx.phase === "working" || tx.phase === "wallet" || tx.phase === "pending";

  const register = async () => {
    try {
      setTx({ phase: "working", message: `Preparing the registration on ${network.chainName}…`, chainId });
      const data = await api<TxData>(`/provider/courses/${course.id}/tx/create-course`, { method: "POST", body: {}, query: { chainId } });
      const receipt = await sendAndWait(txRequest(data, chainId), `Register course on ${network.chainName}`, setTx);
      const [created] = parseEventLogs({ abi: marketAbi, eventName: "CourseCreated", logs: receipt.logs });
      if (created) {
        const onchainId = created.args.courseId.toString();
        // The indexer links it too; doing it now makes the dashboard current at once.
        await api(`/provider/courses/${course.id}/onchain-id`, {
          method: "PUT",
          body: { onchainId: Number(onchainId) },
          query: { chainId },
        }).catch(() => undefined);
        setTx({ phase: "confirmed", message: `Registered on ${network.chainName} as course #${onchainId}.`, hash: receipt.transactionHash, chainId });
      }
      onChange();
    } catch (err) {
      setTx((t) => ({ ...t, phase: "failed", message: errorMessage(err) }));
    }
  };

  return (
    <section class="course-chain" data-chain-id={chainId} aria-label={`On ${network.chainName}`}>
      <h4>
        {network.chainName}{" "}
        <span class="muted small">{onChain?.onchainId ? <>on-chain #{onChain.onchainId}</> : "not registered here"}</span>
      </h4>
      {onChain?.onchainId ? (
        <>
          <PriceList course={{ ...onChain, fiat: null }} />
          <TokenPriceForm course={course} network={network} onChange={onChange} />
        </>
      ) : (
        <div class="button-row register-row">
          <button type="button" onClick={register} disabled={busy || !network.deployed} data-testid="register-onchain">
            Register on {network.chainName}
          </button>
          <span class="muted small">One transaction from your wallet, then set token prices on this chain.</span>
        </div>
      )}
      <TxStatus progress={tx} testId={`register-status-${course.id}-${chainId}`} />
    </section>
  );
}

function TokenPriceForm({ course, network, onChange }: { course: Course; network: NetworkInfo; onChange: () => void }) {
  const chainId = network.chainId;
  const tokens = network.tokens;
  const [token, setToken] = useState<string>(tokens[0]?.address ?? "");
  const [amount, setAmount] = useState("");
  const [tx, setTx] = useState<TxProgress>({ phase: "idle", message: "" });
  const info: TokenInfo | undefined = tokenByAddress(token, chainId);
  const busy = tx.phase === "working" || tx.phase === "wallet" || tx.phase === "pending";
  const submit = async (event: Event) => {
    event.preventDefault();
    if (!info) return;
    let price: bigint;
    try {
      price = parseTokenInput(amount, info.decimals);
    } catch (err) {
      setTx({ phase: "failed", message: errorMessage(err) });
      return;
    }
    try {
      setTx({ phase: "working", message: "Preparing the price change…", chainId });
      const data = await api<TxData>(`/provider/courses/${course.id}/tx/set-price`, {
        method: "POST",
        body: { token: info.address, price: price.toString() },
        query: { chainId },
      });
      const receipt = await sendAndWait(txRequest(data, chainId), `Set price in ${info.symbol}`, setTx);
      setTx({
        phase: "confirmed",
        message: `Price on ${network.chainName} set to ${formatToken(price, info.decimals, info.symbol)}. The catalog shows it once indexed.`,
        hash: receipt.transactionHash,
        chainId,
      });
      setAmount("");
      window.setTimeout(onChange, 1500);
    } catch (err) {
      setTx((t) => ({ ...t, phase: "failed", message: errorMessage(err) }));
    }
  };
  const id = `${course.id}-${chainId}`;
  return (
    <form class="inline-form token-price-form" onSubmit={submit} aria-label={`Token price of ${course.title} on ${network.chainName}`}>
      <div class="field">
        <label for={`tp-token-${id}`}>Token</label>
        <select id={`tp-token-${id}`} value={token} onChange={(e) => setToken((e.currentTarget as HTMLSelectElement).value)}>
          {tokens.map((t) => (
            <option key={t.address} value={t.address}>
              {t.symbol}
            </option>
          ))}
        </select>
      </div>
      <div class="field">
        <label for={`tp-amount-${id}`}>Price ({info?.symbol})</label>
        <input id={`tp-amount-${id}`} inputMode="decimal" value={amount} placeholder="e.g. 25" onInput={(e) => setAmount((e.currentTarget as HTMLInputElement).value)} />
      </div>
      <button type="submit" class="button-small" disabled={busy || !amount}>
        Set price
      </button>
      <TxStatus progress={tx} testId={`price-status-${id}`} />
    </form>
  );
}

function FiatPriceForm({ course, onChange }: { course: Course; onChange: () => void }) {
  const [amount, setAmount] = useState("");
  const [currency, setCurrency] = useState(course.fiat?.currency?.toUpperCase() ?? "USD");
  const [message, setMessage] = useState<{ kind: "error" | "success"; text: string } | null>(null);
  const submit = async (event: Event) => {
    event.preventDefault();
    setMessage(null);
    try {
      const minor = parseFiatInput(amount, currency);
      await api(`/provider/courses/${course.id}/fiat-price`, { method: "PUT", body: { amount: minor.toString(), currency } });
      setMessage({ kind: "success", text: `Card price set to ${formatFiat(minor, currency)}.` });
      setAmount("");
      onChange();
    } catch (err) {
      setMessage({ kind: "error", text: errorMessage(err) });
    }
  };
  return (
    <form class="inline-form fiat-price-form" onSubmit={submit} aria-label={`Card price of ${course.title}`}>
      <div class="field">
        <label for={`fp-amount-${course.id}`}>Card price</label>
        <input
          id={`fp-amount-${course.id}`}
          inputMode="decimal"
          value={amount}
          placeholder={course.fiat ? formatFiat(course.fiat.amount, course.fiat.currency) : `e.g. 49${fiatDigits(currency) ? ".00" : ""}`}
          onInput={(e) => setAmount((e.currentTarget as HTMLInputElement).value)}
        />
      </div>
      <div class="field" style={{ flex: "0 0 6rem" }}>
        <label for={`fp-currency-${course.id}`}>Currency</label>
        <select id={`fp-currency-${course.id}`} value={currency} onChange={(e) => setCurrency((e.currentTarget as HTMLSelectElement).value)}>
          {["USD", "EUR", "GBP", "CHF", "JPY"].map((c) => (
            <option key={c}>{c}</option>
          ))}
        </select>
      </div>
      <button type="submit" class="button-small button-secondary" disabled={!amount}>
        Set card price
      </button>
      {message && <Alert kind={message.kind}>{message.text}</Alert>}
    </form>
  );
}

const CERTIFICATE_MODES: Record<Course["certificateMode"], { label: string; note: string }> = {
  mint: { label: "Minted by the platform", note: "Tuition mints each certificate to the learner's wallet and pays the gas." },
  voucher: { label: "Claimed by the learner", note: "Learners claim their certificate with a signed voucher and pay the gas." },
};

function CertificateModeForm({ course, onChange }: { course: Course; onChange: () => void }) {
  const [mode, setMode] = useState<Course["certificateMode"]>(course.certificateMode);
  const [busy, setBusy] = useState(false);
  const [message, setMessage] = useState<{ kind: "error" | "success"; text: string } | null>(null);
  // Follow the saved mode when the course list reloads.
  useEffect(() => setMode(course.certificateMode), [course.certificateMode]);
  const submit = async (event: Event) => {
    event.preventDefault();
    setMessage(null);
    setBusy(true);
    try {
      const saved = toCourse(await api<Raw>(`/provider/courses/${course.id}`, { method: "PATCH", body: { certificateMode: mode } }));
      setMessage({ kind: "success", text: `Saved: certificates ${CERTIFICATE_MODES[saved.certificateMode].label.toLowerCase()}.` });
      onChange();
    } catch (err) {
      setMessage({ kind: "error", text: errorMessage(err) });
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="inline-form certificate-mode-form" onSubmit={submit} aria-label={`Certificates of ${course.title}`}>
      <div class="field">
        <label for={`cm-mode-${course.id}`}>Certificates</label>
        <select
          id={`cm-mode-${course.id}`}
          value={mode}
          aria-describedby={`cm-note-${course.id}`}
          onChange={(e) => setMode((e.currentTarget as HTMLSelectElement).value === "voucher" ? "voucher" : "mint")}
        >
          {(["mint", "voucher"] as const).map((m) => (
            <option key={m} value={m}>
              {CERTIFICATE_MODES[m].label}
            </option>
          ))}
        </select>
      </div>
      <button type="submit" class="button-small button-secondary" disabled={busy || mode === course.certificateMode}>
        {busy ? "Saving…" : "Save mode"}
      </button>
      <p id={`cm-note-${course.id}`} class="muted small form-note">
        {CERTIFICATE_MODES[mode].note}
      </p>
      {message && <Alert kind={message.kind}>{message.text}</Alert>}
    </form>
  );
}

// ------------------------------------------------------------------ money

/** One chain's balances, or why they could not be read (another chain's still show). */
interface ChainBalances {
  network: NetworkInfo;
  rows: Raw[];
  error: string | null;
}

async function fetchBalances(): Promise<ChainBalances[]> {
  return Promise.all(
    networks().map(async (network) => {
      try {
        const data = await api<Raw>("/provider/balances", { query: { chainId: network.chainId } });
        return { network, rows: itemsOf<Raw>(data.balances ?? []), error: null };
      } catch (err) {
        return { network, rows: [], error: errorMessage(err) };
      }
    }),
  );
}

/** Withdrawable money and refund escrow per chain and token; withdrawing switches the wallet to
 * the chain first. */
function Balances({ onWithdrawn }: { onWithdrawn: (hash: string) => void }) {
  const balances = useAsync(fetchBalances, []);
  const [tx, setTx] = useState<TxProgress>({ phase: "idle", message: "" });
  const busy = tx.phase === "working" || tx.phase === "wallet" || tx.phase === "pending";
  const withdraw = async (chainId: number, token: string, symbol: string) => {
    try {
      setTx({ phase: "working", message: `Preparing the ${symbol} withdrawal on ${chainLabel(chainId)}…`, chainId });
      const data = await api<TxData>("/provider/tx/withdraw", { method: "POST", body: { token }, query: { chainId } });
      const receipt = await sendAndWait(txRequest(data, chainId), `Withdraw ${symbol}`, setTx);
      balances.reload();
      onWithdrawn(receipt.transactionHash);
    } catch (err) {
      setTx((t) => ({ ...t, phase: "failed", message: errorMessage(err) }));
    }
  };
  return (
    <section class="card balances" aria-labelledby="balances-title">
      <h2 id="balances-title">Balances</h2>
      {balances.loading && !balances.data && <Loading />}
      {balances.error && <Alert>{balances.error}</Alert>}
      {balances.data?.map(({ network, rows, error }) => (
        <div key={network.chainId} class="chain-balances" data-chain-id={network.chainId}>
          <h3 class="chain-name">{network.chainName}</h3>
          {error && <Alert kind="warning">{error}</Alert>}
          {rows.length > 0 && (
            <div class="table-wrap" tabIndex={0} role="region" aria-label={`Balances on ${network.chainName}`}>
              <table class="data-table">
                <thead>
                  <tr>
                    <th scope="col">Token</th>
                    <th scope="col" class="num">
                      Withdrawable
                    </th>
                    <th scope="col" class="num">
                      In refund escrow
                    </th>
                    <th scope="col">
                      <span class="visually-hidden">Action</span>
                    </th>
                  </tr>
                </thead>
                <tbody>
                  {rows.map((b) => {
                    const t = b.token as Raw;
                    const withdrawable = BigInt(b.withdrawable ?? 0);
                    return (
                      <tr key={t.address} data-token={t.symbol}>
                        <th scope="row">{t.symbol}</th>
                        <td class="num">{formatToken(withdrawable, t.decimals, t.symbol)}</td>
                        <td class="num">{formatToken(BigInt(b.escrowNet ?? 0), t.decimals, t.symbol)}</td>
                        <td>
                          <button
                            type="button"
                            class="button-small"
                            disabled={busy || withdrawable === 0n}
                            onClick={() => withdraw(network.chainId, t.address, t.symbol)}
                          >
                            Withdraw
                          </button>
                        </td>
                      </tr>
                    );
                  })}
                </tbody>
              </table>
            </div>
          )}
        </div>
      ))}
      <p class="muted small">Sales stay in escrow until their refund window ends, then become withdrawable.</p>
      <TxStatus progress={tx} testId="withdraw-status" />
    </section>
  );
}

/** "ETH on Anvil 31338" for a crypto total (tokens of several chains share symbols). */
function totalLabel(t: Raw): string {
  const token = t.token as Raw | null;
  if (!token) return String(t.currency).toUpperCase();
  const chainId = t.chainId ?? token.chainId;
  return networks().length > 1 && chainId != null ? `${token.symbol} on ${chainLabel(Number(chainId))}` : String(token.symbol);
}

function Sales() {
  const sales = useAsync(() => api<Raw>("/provider/sales"), []);
  const orders = itemsOf<Raw>(sales.data?.orders ?? []).map(toOrder);
  const totals = itemsOf<Raw>(sales.data?.totals ?? []);
  const byCourse = itemsOf<Raw>(sales.data?.byCourse ?? []);
  const courses = useAsync(async () => (await api<Raw[]>("/provider/courses")).map((c) => toCourse(c)), []);
  const titles = new Map(courses.data?.map((c) => [c.id, c.title]) ?? []);
  const [refunding, setRefunding] = useState<string | null>(null);
  const [refundError, setRefundError] = useState<string | null>(null);
  // A card refund goes through Stripe; the order turns refunded when Stripe confirms it.
  const refundCard = async (orderId: string) => {
    setRefundError(null);
    setRefunding(orderId);
    try {
      await api(`/orders/${orderId}/refund`, { method: "POST" });
    } catch (err) {
      setRefundError(errorMessage(err));
    } finally {
      setRefunding(null);
      sales.reload();
    }
  };
  const fmtOf = (t: Raw) => (v: string) => {
    const token = t.token as Raw | null;
    return token ? formatToken(BigInt(v ?? 0), token.decimals, token.symbol) : formatFiat(BigInt(v ?? 0), String(t.currency));
  };
  return (
    <section aria-labelledby="sales-title">
      <h2 id="sales-title">Sales</h2>
      {sales.loading && !sales.data && <Loading />}
      {sales.error && <Alert>{sales.error}</Alert>}
      {totals.length > 0 && (
        <ul class="card-list totals">
          {totals.map((t, i) => {
            const fmt = fmtOf(t);
            return (
              <li key={i} class="card" data-chain-id={t.chainId ?? undefined}>
                <p class="muted small">{t.rail === "card" ? "Card" : "Crypto"} · {totalLabel(t)}</p>
                <p class="stat">{fmt(t.net)}</p>
                <p class="small muted">
                  net of {t.orders} orders · gross {fmt(t.gross)}
                  {BigInt(t.refunded ?? 0) > 0n ? ` · refunded ${fmt(t.refunded)}` : ""}
                  {BigInt(t.fees ?? 0) > 0n ? ` · platform fee ${fmt(t.fees)}` : ""}
                </p>
              </li>
            );
          })}
        </ul>
      )}
      {byCourse.length > 0 && (
        <div class="table-wrap" tabIndex={0} role="region" aria-label="Sales per course">
          <table class="data-table" data-testid="sales-by-course">
            <thead>
              <tr>
                <th scope="col">Course</th>
                <th scope="col">Rail</th>
                <th scope="col" class="num">
                  Orders
                </th>
                <th scope="col" class="num">
                  Gross
                </th>
                <th scope="col" class="num">
                  Refunded
                </th>
                <th scope="col" class="num">
                  Platform fee
                </th>
              </tr>
            </thead>
            <tbody>
              {byCourse.map((t, i) => {
                const fmt = fmtOf(t);
                return (
                  <tr key={i}>
                    <td>{titles.get(Number(t.courseId)) ?? `#${t.courseId}`}</td>
                    <td>{t.rail === "card" ? "Card" : `Crypto · ${totalLabel(t)}`}</td>
                    <td class="num">{t.orders}</td>
                    <td class="num">{fmt(t.gross)}</td>
                    <td class="num">{fmt(t.refunded)}</td>
                    <td class="num">{fmt(t.fees)}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
      {sales.data && orders.length === 0 && <p>No sales yet.</p>}
      {refundError && <Alert>{refundError}</Alert>}
      {orders.length > 0 && (
        <OrdersTable
          orders={orders.map((o) => ({ ...o, courseTitle: o.courseTitle ?? titles.get(o.courseId) ?? null }))}
          showBuyer
          action={(o) =>
            o.rail === "card" && o.status === "paid" ? (
              <button type="button" class="button-small" disabled={refunding === o.id} onClick={() => refundCard(o.id)}>
                {refunding === o.id ? "Refunding…" : "Refund"}
              </button>
            ) : null
          }
        />
      )}
    </section>
  );
}

// ------------------------------------------------------------------ certificates

/** The certificates of my courses, and revoking one (with a reason and a note). */
function IssuedCertificates() {
  const list = useAsync(() => api<IssuedCertificate[]>("/provider/certificates"), []);
  useInterval(list.reload, 2000, list.data?.some(revocationPending) ?? false);
  return (
    <section aria-labelledby="issued-title">
      <h2 id="issued-title">Certificates</h2>
      {list.loading && !list.data && <Loading />}
      {list.error && <Alert>{list.error}</Alert>}
      {list.data?.length === 0 && <p>No certificates issued yet.</p>}
      {list.data && list.data.length > 0 && (
        <div class="table-wrap" tabIndex={0} role="region" aria-label="Certificates">
          <table class="data-table">
            <thead>
              <tr>
                <th scope="col">Course</th>
                <th scope="col">Learner</th>
                <th scope="col">Certificate</th>
                <th scope="col">Status</th>
                <th scope="col">
                  <span class="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {list.data.map((c) => (
                <IssuedCertificateRow key={c.id} certificate={c} endpoint="/provider/certificates" onChange={list.reload} />
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

// ------------------------------------------------------------------ payout ledger

const PAYOUT_PAGE = 20;
/** How long the ledger is polled for a withdrawal the indexer has not recorded yet. */
const PAYOUT_WAIT_MS = 3 * 60_000;

interface Ledger {
  /** Newest first. */
  rows: Payout[];
  /** `before` of the next older page; null once the oldest entry is loaded. */
  cursor: number | null;
  loaded: boolean;
}

/** Fold a fresh newest page into the loaded ledger. The page holds every entry from its oldest id
 * up (all of them when it is the last page): loaded rows in that range are replaced (a reorg may
 * have dropped some), older pages are kept unless newer entries than the page holds are missing
 * between them. */
function withNewest(prev: Ledger, page: PayoutPage): Ledger {
  const floor = page.nextBefore ?? 0;
  const newestKnown = prev.rows[0]?.id ?? 0;
  if (!prev.loaded || floor > newestKnown) return { rows: page.payouts, cursor: page.nextBefore, loaded: true };
  return {
    rows: [...page.payouts, ...prev.rows.filter((r) => r.id < floor)],
    cursor: page.nextBefore === null ? null : prev.cursor,
    loaded: true,
  };
}

function payoutKindLabel(kind: string): string {
  return ({ released: "Released", withdrawn: "Withdrawn" } as Record<string, string>)[kind] ?? kind;
}

function Payouts({ awaiting }: { awaiting: Withdrawal | null }) {
  const [ledger, setLedger] = useState<Ledger>({ rows: [], cursor: null, loaded: false });
  const [error, setError] = useState<string | null>(null);
  const [loadingMore, setLoadingMore] = useState(false);

  const refresh = useCallback(async () => {
    try {
      const page = await fetchPayouts({ limit: PAYOUT_PAGE });
      setLedger((prev) => withNewest(prev, page));
      setError(null);
    } catch (err) {
      setError(errorMessage(err));
    }
  }, []);
  useEffect(() => {
    void refresh();
  }, [refresh, awaiting]);

  // The indexer records a withdrawal a few blocks after it is mined: poll until it shows.
  const hash = awaiting?.hash.toLowerCase();
  const waiting =
    awaiting !== null &&
    !ledger.rows.some((r) => r.txHash.toLowerCase() === hash) &&
    Date.now() - awaiting.at < PAYOUT_WAIT_MS;
  useInterval(refresh, 2000, waiting);

  const loadMore = async () => {
    const before = ledger.cursor;
    if (before === null) return;
    setLoadingMore(true);
    try {
      const page = await fetchPayouts({ before, limit: PAYOUT_PAGE });
      // Ignore the page if a refresh replaced the ledger meanwhile.
      setLedger((prev) => (prev.cursor === before ? { rows: [...prev.rows, ...page.payouts], cursor: page.nextBefore, loaded: true } : prev));
      setError(null);
    } catch (err) {
      setError(errorMessage(err));
    } finally {
      setLoadingMore(false);
    }
  };

  const { rows } = ledger;
  return (
    <section class="payouts" aria-labelledby="payouts-title">
      <h2 id="payouts-title">Payouts</h2>
      <p class="muted small">
        Released: a sale's refund window ended and its net moved from escrow to your withdrawable balance (the platform fee
        went to the treasury). Withdrawn: paid out to your wallet. Sales without a refund window are credited at once and show
        up here when withdrawn.
      </p>
      {!ledger.loaded && !error && <Loading />}
      {error && <Alert>{error}</Alert>}
      {ledger.loaded && rows.length === 0 && <p>No payouts yet.</p>}
      {rows.length > 0 && (
        <div class="table-wrap" tabIndex={0} role="region" aria-label="Payout ledger">
          <table class="data-table">
            <thead>
              <tr>
                <th scope="col">Recorded</th>
                <th scope="col">Kind</th>
                <th scope="col" class="num">
                  Amount
                </th>
                <th scope="col" class="num">
                  Platform fee
                </th>
                <th scope="col">Transaction</th>
                <th scope="col">Chain</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((p) => (
                <tr key={p.id} data-kind={p.kind} data-payout-id={p.id}>
                  <td>{formatDate(p.recordedAt, true)}</td>
                  <td>
                    <span class={`badge badge-${p.kind}`}>{payoutKindLabel(p.kind)}</span>
                  </td>
                  <td class="num">{formatToken(p.amount, p.token.decimals, p.token.symbol)}</td>
                  <td class="num">{p.kind === "released" ? formatToken(p.fee, p.token.decimals, p.token.symbol) : "—"}</td>
                  <td>
                    <TxHash hash={p.txHash} label="" chainId={p.chainId} />
                  </td>
                  <td>{chainLabel(p.chainId)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {waiting && <Loading label="Waiting for your withdrawal to reach the ledger…" />}
      {ledger.cursor !== null && (
        <div class="button-row">
          <button type="button" class="button-secondary button-small" onClick={loadMore} disabled={loadingMore}>
            {loadingMore ? "Loading…" : "Load more"}
          </button>
        </div>
      )}
    </section>
  );
}
