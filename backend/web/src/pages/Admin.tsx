// Admin view: decide card payments that need review (refund or accept); review providers' public
// records and verify or unverify them. The decision is audited by the API and sent on-chain by
// the worker (verifyProvider / unverifyProvider); the row shows the chain's answer once the
// indexer has mirrored it.
import { useState } from "preact/hooks";
import { api, errorMessage } from "../api";
import { IssuedCertificateRow, revocationPending, type IssuedCertificate } from "../components/RevokeCertificate";
import { RequireSignIn } from "../components/wallet-ui";
import { Alert, Loading, TxHash, useAsync, useInterval, usePageTitle } from "../components/ui";
import { formatDate, formatFiat, shortAddress } from "../format";
import { sessionStore } from "../session";
import { useStore } from "../store";

interface VerificationRequest {
  id: number;
  verify: boolean;
  reason: string;
  requestedBy: string;
  requestedAt: string;
  txHash: string | null;
  outcome: string | null;
}

interface OrderToReview {
  id: string;
  courseId: number;
  courseTitle?: string | null;
  buyer: string;
  recipient: string;
  amount: string;
  currency: string | null;
  anomalies: { field: string; quoted: string; paid: string }[];
}

interface ProviderForReview {
  address: string;
  name: string;
  domain: string;
  profileHash: string;
  verified: boolean;
  verifiedAt: string | null;
  verifiedBy: string | null;
  latestRequest: VerificationRequest | null;
}

export function AdminPage() {
  usePageTitle("Admin");
  return (
    <>
      <h1 tabIndex={-1}>Admin</h1>
      <RequireSignIn what="review providers">
        <AdminOnly />
      </RequireSignIn>
    </>
  );
}

function AdminOnly() {
  const session = useStore(sessionStore);
  if (!session.user?.roles?.includes("admin")) {
    return <Alert>This page is for the platform's admins; the signed-in wallet is not one.</Alert>;
  }
  return (
    <>
      <PaymentsToReview />
      <Providers />
      <RevokeByToken />
    </>
  );
}

/** Find the certificate behind a token id (what a verifier shows) and revoke it. */
function RevokeByToken() {
  const [tokenId, setTokenId] = useState("");
  const [found, setFound] = useState<IssuedCertificate | null>(null);
  const [error, setError] = useState<string | null>(null);
  const load = async (id: string) => {
    setError(null);
    try {
      setFound(await api<IssuedCertificate>(`/admin/certificates/by-token/${id}`));
    } catch (err) {
      setFound(null);
      setError(errorMessage(err));
    }
  };
  useInterval(() => found?.tokenId && load(found.tokenId), 2000, found !== null && revocationPending(found));
  const submit = (event: Event) => {
    event.preventDefault();
    const id = tokenId.trim();
    if (!/^[0-9]{1,78}$/.test(id)) return setError("Enter the certificate's token id (digits).");
    void load(id);
  };
  return (
    <section aria-labelledby="revoke-title">
      <h2 id="revoke-title">Revoke a certificate</h2>
      <form class="card" onSubmit={submit} noValidate>
        <div class="field">
          <label for="revoke-token">Token id</label>
          <input id="revoke-token" inputMode="numeric" value={tokenId} onInput={(e) => setTokenId((e.currentTarget as HTMLInputElement).value)} />
        </div>
        <button type="submit">Find</button>
      </form>
      {error && <Alert>{error}</Alert>}
      {found && (
        <div class="table-wrap" tabIndex={0} role="region" aria-label="Certificate">
          <table class="data-table">
            <tbody>
              <IssuedCertificateRow certificate={found} endpoint="/admin/certificates" onChange={() => found.tokenId && load(found.tokenId)} />
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

/** Whether the chain has not answered the newest request yet. */
/** Card payments Stripe took that grant nothing until an admin refunds or accepts them. */
function PaymentsToReview() {
  const orders = useAsync(() => api<OrderToReview[]>("/admin/orders/review"), []);
  return (
    <section aria-labelledby="review-title">
      <h2 id="review-title">Card payments to review</h2>
      <p class="muted">
        Stripe took these payments, but they differ from the quote (amount or currency), or arrived late for a learner who
        had access by then. Nothing was granted: refund the payment, or accept it to grant access.
      </p>
      {orders.loading && !orders.data && <Loading />}
      {orders.error && <Alert>{orders.error}</Alert>}
      {orders.data?.length === 0 && <p>Nothing to review.</p>}
      <ul class="card-list">
        {orders.data?.map((o) => (
          <li key={o.id}>
            <OrderReview order={o} onChange={orders.reload} />
          </li>
        ))}
      </ul>
    </section>
  );
}

function OrderReview({ order: o, onChange }: { order: OrderToReview; onChange: () => void }) {
  const [reason, setReason] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const id = `review-reason-${o.id}`;

  const decide = async (path: string, body?: object) => {
    setError(null);
    setBusy(true);
    try {
      await api(path, { method: "POST", body });
      onChange();
    } catch (err) {
      setError(errorMessage(err));
      onChange();
    } finally {
      setBusy(false);
    }
  };
  const accept = () => {
    if (reason.trim().length < 3) return setError("Say why (at least 3 characters): it goes into the audit log.");
    return decide(`/admin/orders/${o.id}/accept`, { reason: reason.trim() });
  };

  return (
    <article class="card" data-testid="order-review" data-order={o.id}>
      <h3>{o.courseTitle ?? `Course ${o.courseId}`}</h3>
      <p>
        Quoted {o.currency ? formatFiat(o.amount, o.currency) : o.amount} to <code title={o.buyer}>{shortAddress(o.buyer)}</code>
      </p>
      <ul>
        {o.anomalies.map((a) => (
          <li key={`${a.field}-${a.paid}`}>
            {a.field === "amount" ? `Paid ${a.paid} (quoted ${a.quoted})` : `Paid late: ${a.paid}`}
          </li>
        ))}
      </ul>
      <div class="field">
        <label for={id}>Reason to accept (for the audit log)</label>
        <input id={id} value={reason} maxLength={500} onInput={(e) => setReason((e.currentTarget as HTMLInputElement).value)} />
      </div>
      {error && <Alert>{error}</Alert>}
      <button type="button" class="button-secondary" disabled={busy} onClick={() => decide(`/orders/${o.id}/refund`)}>
        Refund
      </button>{" "}
      <button type="button" disabled={busy} onClick={accept}>
        Accept and grant access
      </button>
    </article>
  );
}

function pending(p: ProviderForReview): boolean {
  const r = p.latestRequest;
  if (!r) return false;
  // The worker finished, but the indexer may not have mirrored the event yet.
  return r.outcome === null || (r.outcome === "sent" && p.verified !== r.verify);
}

function Providers() {
  const providers = useAsync(() => api<ProviderForReview[]>("/admin/providers"), []);
  const waiting = providers.data?.some(pending) ?? false;
  useInterval(providers.reload, 2000, waiting);
  return (
    <section aria-labelledby="providers-title">
      <h2 id="providers-title">Providers' public records</h2>
      <p class="muted">
        Verifying vouches, on-chain, for the name and website a provider published: verifiers see it next to every
        certificate of its courses. Check that the provider controls the website before you verify. A provider that
        changes its record loses the verification until it is reviewed again.
      </p>
      {providers.loading && !providers.data && <Loading />}
      {providers.error && <Alert>{providers.error}</Alert>}
      {providers.data?.length === 0 && <p>No provider has published a record yet.</p>}
      <ul class="card-list">
        {providers.data?.map((p) => (
          <li key={p.address}>
            <ProviderReview provider={p} onChange={providers.reload} />
          </li>
        ))}
      </ul>
    </section>
  );
}

function requestStatus(p: ProviderForReview): string | null {
  const r = p.latestRequest;
  if (!r) return null;
  const what = r.verify ? "Verification" : "Removal of the verification";
  if (pending(p)) return `${what} requested; waiting for the chain…`;
  switch (r.outcome) {
    case "profile_changed":
      return "The provider changed its record before it was verified: review the new one.";
    case "superseded":
      return `${what} was replaced by a newer decision.`;
    default:
      return `${what} recorded on-chain.`;
  }
}

function ProviderReview({ provider: p, onChange }: { provider: ProviderForReview; onChange: () => void }) {
  const [reason, setReason] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const id = `reason-${p.address}`;

  const decide = async (verified: boolean) => {
    setError(null);
    if (reason.trim().length < 3) return setError("Say why (at least 3 characters): it goes into the audit log.");
    setBusy(true);
    try {
      await api(`/admin/providers/${p.address}/verification`, {
        method: "POST",
        body: { verified, profileHash: verified ? p.profileHash : undefined, reason: reason.trim() },
      });
      setReason("");
      onChange();
    } catch (err) {
      setError(errorMessage(err));
      // A 409 means the record changed: show the new one.
      onChange();
    } finally {
      setBusy(false);
    }
  };

  const status = requestStatus(p);
  return (
    <article class="card" data-testid="provider-review" data-address={p.address}>
      <h3>{p.name}</h3>
      <p>
        <a href={`https://${p.domain}`} rel="noopener noreferrer" target="_blank">
          {p.domain}
        </a>{" "}
        · <code title={p.address}>{shortAddress(p.address)}</code>
      </p>
      <p data-testid="provider-verified">
        {p.verified
          ? `verified by the platform since ${formatDate(p.verifiedAt, true)}`
          : "not verified"}
      </p>
      {status && (
        <p role="status" data-testid="provider-request">
          {pending(p) && <span class="spinner" aria-hidden="true" />} {status}
        </p>
      )}
      {p.latestRequest?.txHash && <TxHash hash={p.latestRequest.txHash} />}
      <div class="field">
        <label for={id}>Reason (for the audit log)</label>
        <input id={id} value={reason} maxLength={500} onInput={(e) => setReason((e.currentTarget as HTMLInputElement).value)} />
      </div>
      {error && <Alert>{error}</Alert>}
      {p.verified ? (
        <button type="button" class="button-secondary" disabled={busy || pending(p)} onClick={() => decide(false)}>
          Remove verification
        </button>
      ) : (
        <button type="button" disabled={busy || pending(p)} onClick={() => decide(true)}>
          Verify
        </button>
      )}
    </article>
  );
}
