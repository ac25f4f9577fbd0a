import { verifyPath } from "../certificate";
import type { ComponentChildren } from "preact";
import { RequireSignIn } from "../components/wallet-ui";
import { RemoveCertificate, shortTokenId } from "../components/CertificatePanel";
import { Alert, Loading, TxHash, useAsync, usePageTitle } from "../components/ui";
import { chainLabel, tokenByAddress } from "../config";
import { formatDate, formatFiat, formatToken } from "../format";
import { api } from "../api";
import { fetchCourses, fetchMyCertificates, fetchMyEntitlements, fetchMyOrders, toProgress, type CertificateInfo, type Order } from "../models";
import { Link } from "../router";
import { sessionStore } from "../session";
import { useStore } from "../store";
import { sourceLabel } from "./Course";

export function AccountPage() {
  usePageTitle("My account");
  return (
    <>
      <h1 tabIndex={-1}>My account</h1>
      <RequireSignIn what="see your courses, payments and certificates">
        <AccountView />
      </RequireSignIn>
    </>
  );
}

function AccountView() {
  const session = useStore(sessionStore);
  const address = session.user?.address;
  const entitlements = useAsync(async () => {
    const list = await fetchMyEntitlements();
    // Progress per active course (a handful of requests, in parallel).
    await Promise.all(
      list
        .filter((e) => e.active && !e.progress)
        .map(async (e) => {
          e.progress = await api<Record<string, unknown>>(`/courses/${e.courseId}/progress`).then(toProgress).catch(() => null);
        }),
    );
    return list;
  }, [address]);
  const orders = useAsync(() => fetchMyOrders(), [address]);
  const certificates = useAsync(() => fetchMyCertificates(), [address]);
  const catalog = useAsync(() => fetchCourses(), []);
  const titles = new Map(catalog.data?.map((c) => [c.id, c.title]) ?? []);
  const titleOf = (id: number, given: string | null) => given ?? titles.get(id) ?? `Course ${id}`;
  const active = entitlements.data?.filter((e) => e.active);
  return (
    <div class="account">
      <p class="muted">
        Signed in as <code>{address}</code>
      </p>
      <section aria-labelledby="my-courses">
        <h2 id="my-courses">My courses</h2>
        {entitlements.loading && <Loading />}
        {entitlements.error && <Alert>{entitlements.error}</Alert>}
        {active?.length === 0 && (
          <p>
            No courses yet. <Link href="/">Browse the catalog</Link>.
          </p>
        )}
        {active && active.length > 0 && (
          <ul class="card-list">
            {active.map((e) => (
              <li key={e.courseId} class="card">
                <h3>
                  <Link href={`/courses/${e.courseId}`}>{titleOf(e.courseId, e.courseTitle)}</Link>
                </h3>
                <p class="muted">
                  Access by {sourceLabel(e.source)} since {formatDate(e.since)}
                </p>
                {e.progress && e.progress.total > 0 && (
                  <p>
                    <progress max={e.progress.total} value={e.progress.completed} aria-label={`Progress of ${titleOf(e.courseId, e.courseTitle)}`} />{" "}
                    {e.progress.completed}/{e.progress.total} lessons
                  </p>
                )}
                <Link class="button button-small" href={`/courses/${e.courseId}/lessons/1`}>
                  Open
                </Link>
              </li>
            ))}
          </ul>
        )}
      </section>

      <section aria-labelledby="my-payments">
        <h2 id="my-payments">Payment history</h2>
        {orders.loading && <Loading />}
        {orders.error && <Alert>{orders.error}</Alert>}
        {orders.data?.length === 0 && <p>No payments yet.</p>}
        {orders.data && orders.data.length > 0 && (
          <OrdersTable orders={orders.data.map((o) => ({ ...o, courseTitle: titleOf(o.courseId, o.courseTitle) }))} />
        )}
      </section>

      <section aria-labelledby="my-certificates">
        <h2 id="my-certificates">Certificates</h2>
        {certificates.loading && <Loading />}
        {certificates.error && <Alert>{certificates.error}</Alert>}
        {certificates.data?.length === 0 && <p>Finish a course to earn your first certificate.</p>}
        {certificates.data && certificates.data.length > 0 && (
          <ul class="card-list">
            {certificates.data.map((c) => (
              <li key={`${c.courseId}-${c.id}`} class="card" data-testid="certificate-item" data-status={c.status}>
                <h3>{titleOf(c.courseId, c.courseTitle)}</h3>
                <p>
                  Status: <strong>{certificateStatusLabel(c.status)}</strong>
                  {c.tokenId && <> · token #{shortTokenId(c.tokenId)}</>}
                </p>
                {c.replacedByTokenId && (
                  <p data-testid="replaced-by">
                    Corrected: replaced by{" "}
                    <Link href={verifyPath(c.replacedByTokenId, c.chainId)}>certificate #{shortTokenId(c.replacedByTokenId)}</Link>
                  </p>
                )}
                <div class="button-row">
                {c.tokenId && (c.status === "minted" || c.status === "revoked" || c.status === "removed") ? (
                  <Link class="button button-small" href={verifyPath(c.tokenId, c.chainId)}>
                    View certificate
                  </Link>
                ) : c.status === "claimable" ? (
                  <Link class="button button-small" href={`/courses/${c.courseId}`}>
                    Claim it
                  </Link>
                ) : null}
                {c.record && <DownloadRecord cert={c} />}
                </div>
                {c.status === "minted" && <RemoveCertificate cert={c} onRemoved={certificates.reload} />}
              </li>
            ))}
          </ul>
        )}
      </section>
    </div>
  );
}

export function certificateStatusLabel(status: string): string {
  return (
    {
      requested: "being prepared",
      minting: "minting",
      claimable: "ready to claim",
      minted: "minted",
      revoked: "revoked",
      removed: "removed by its holder",
    } as Record<string, string>
  )[status] ?? status;
}

export function OrdersTable({
  orders,
  showBuyer = false,
  action,
}: {
  orders: Order[];
  showBuyer?: boolean;
  /** An extra last cell per order (the provider's refund button). */
  action?: (order: Order) => ComponentChildren;
}) {
  return (
    <div class="table-wrap" tabIndex={0} role="region" aria-label="Payments">
      <table class="data-table">
        <thead>
          <tr>
            <th scope="col">Date</th>
            <th scope="col">Course</th>
            {showBuyer && <th scope="col">Buyer</th>}
            <th scope="col">Paid with</th>
            <th scope="col">Chain</th>
            <th scope="col" class="num">
              Amount
            </th>
            <th scope="col">Status</th>
            <th scope="col">Reference</th>
            {action && (
              <th scope="col">
                <span class="visually-hidden">Action</span>
              </th>
            )}
          </tr>
        </thead>
        <tbody>
          {orders.map((o) => (
            <tr key={o.id} data-rail={o.rail} data-status={o.status}>
              <td>{formatDate(o.paidAt ?? o.createdAt, true)}</td>
              <td>{o.courseTitle ?? `Course ${o.courseId}`}</td>
              {showBuyer && (
                <td>
                  <code title={o.buyer ?? ""}>{o.buyer ? `${o.buyer.slice(0, 6)}…${o.buyer.slice(-4)}` : "—"}</code>
                </td>
              )}
              <td>{o.rail === "card" ? "Card" : tokenByAddress(o.token, o.chainId)?.symbol ?? "Crypto"}</td>
              <td data-chain-id={o.chainId ?? undefined}>{o.rail === "card" || o.chainId == null ? "—" : chainLabel(o.chainId)}</td>
              <td class="num">{orderAmount(o)}</td>
              <td>
                <span class={`badge badge-${o.status}`}>{o.status}</span>
              </td>
              <td>{o.txHash ? <TxHash hash={o.txHash} label="" chainId={o.chainId} /> : <code class="small">{o.id.slice(0, 8)}</code>}</td>
              {action && <td>{action(o)}</td>}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export function orderAmount(o: Order): string {
  if (o.rail === "card" && o.currency) return formatFiat(o.amount, o.currency);
  const token = tokenByAddress(o.token, o.chainId);
  return token ? formatToken(o.amount, token.decimals, token.symbol) : o.amount.toString();
}

/** The off-chain certificate record, for the verify page's "check a certificate file". */
export function DownloadRecord({ cert }: { cert: CertificateInfo }) {
  const download = () => {
    const blob = new Blob([JSON.stringify({ record: cert.record, recordHash: cert.recordHash, tokenId: cert.tokenId }, null, 2)], {
      type: "application/json",
    });
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = `tuition-certificate-record-${cert.courseId}.json`;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
  };
  return (
    <button type="button" class="button-secondary button-small" onClick={download}>
      Download record (JSON)
    </button>
  );
}
