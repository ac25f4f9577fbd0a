// Where Stripe sends the buyer back: wait for the webhook to mark the order paid and grant access.
// Stripe's success_url carries `?session_id=cs_...`, which finds the order in any tab, browser or
// device; the order id kept in sessionStorage at checkout is only a fallback for links without it.
import { useEffect, useState } from "preact/hooks";
import { api, ApiError, errorMessage, type RequestOptions } from "../api";
import { Alert, useInterval, usePageTitle } from "../components/ui";
import { RequireSignIn } from "../components/wallet-ui";
import { formatFiat } from "../format";
import { PENDING_CARD_KEY } from "../purchase";
import { Link, useLocation } from "../router";

interface CardOrderStatus {
  orderId: string;
  status: string;
  hasAccess: boolean;
  courseId: number;
  courseTitle: string;
  amount: string;
  currency: string | null;
}

interface PendingCheckout {
  orderId: string;
  sessionId: string;
  courseId: number;
}

const DONE = new Set(["paid", "fulfilled", "complete", "completed"]);
const FAILED = new Set(["failed", "expired", "canceled", "cancelled", "refunded", "lost"]);
const TITLE = "Confirming your payment";

function readPending(): PendingCheckout | null {
  try {
    return JSON.parse(sessionStorage.getItem(PENDING_CARD_KEY) ?? "null") as PendingCheckout | null;
  } catch {
    return null;
  }
}

/** The status request for this return: by Stripe's session id if the URL has one. */
function statusRequest(query: URLSearchParams, pending: PendingCheckout | null): [string, RequestOptions] | null {
  const sessionId = query.get("session_id");
  if (sessionId) return ["/checkout/stripe", { query: { sessionId } }];
  const orderId = query.get("order") ?? pending?.orderId;
  return orderId ? [`/checkout/stripe/${encodeURIComponent(orderId)}`, {}] : null;
}

export function CheckoutReturnPage() {
  usePageTitle("Payment");
  const location = useLocation();
  const canceled = location.query.get("canceled") !== null || location.query.get("cancelled") !== null;
  const [pending] = useState(readPending);
  const request = statusRequest(location.query, pending);

  if (canceled) {
    const courseId = pending?.courseId;
    return (
      <section class="card checkout-return" aria-labelledby="return-title" data-testid="checkout-return" data-status="canceled">
        <h1 id="return-title" tabIndex={-1}>
          Payment canceled
        </h1>
        <p>No money was taken. {courseId && <Link href={`/courses/${courseId}`}>Back to the course</Link>}</p>
      </section>
    );
  }
  if (!request) {
    return (
      <section class="card checkout-return" aria-labelledby="return-title" data-testid="checkout-return" data-status="unknown">
        <h1 id="return-title" tabIndex={-1}>
          {TITLE}
        </h1>
        <Alert>We could not tell which payment this is. Your access will still appear in My account once the payment clears.</Alert>
      </section>
    );
  }
  // Only the buyer may see the order: a learner back from Stripe in another browser signs in here.
  return (
    <RequireSignIn title={TITLE} what="see this payment">
      <ReturnStatus request={request} />
    </RequireSignIn>
  );
}

function ReturnStatus({ request }: { request: [string, RequestOptions] }) {
  const [path, options] = request;
  const [status, setStatus] = useState<CardOrderStatus | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [notFound, setNotFound] = useState(false);
  const [startedAt] = useState(Date.now());
  const requestKey = `${path}?${JSON.stringify(options.query ?? {})}`;

  const finished =
    status !== null &&
    (FAILED.has(status.status) || status.status === "needs_review" || (DONE.has(status.status) && status.hasAccess));

  const poll = async () => {
    try {
      setStatus(await api<CardOrderStatus>(path, options));
      setError(null);
    } catch (err) {
      // Not this learner's payment (or no such checkout): asking again will not change that.
      if (err instanceof ApiError && err.status === 404) setNotFound(true);
      setError(errorMessage(err));
    }
  };
  useEffect(() => {
    setNotFound(false);
    poll();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [requestKey]);
  useInterval(poll, 1500, !finished && !notFound && Date.now() - startedAt < 10 * 60_000);

  const slow = Date.now() - startedAt > 30_000;
  const paid = finished && status !== null && DONE.has(status.status);

  return (
    <section class="card checkout-return" aria-labelledby="return-title" data-testid="checkout-return" data-status={status?.status ?? (notFound ? "not_found" : "unknown")}>
      <h1 id="return-title" tabIndex={-1}>
        {paid ? "Payment received" : TITLE}
      </h1>
      {notFound ? (
        <Alert>We found no card payment of yours for this checkout. If you paid with another wallet, sign in with that one.</Alert>
      ) : status && FAILED.has(status.status) ? (
        <Alert>The payment did not go through ({status.status}). No access was granted.</Alert>
      ) : status?.status === "needs_review" ? (
        <Alert>
          We received your payment, but it differs from the price you were quoted, or you already had this course. An
          administrator is reviewing it: you will get access or a full refund.
        </Alert>
      ) : status?.status === "processing" ? (
        <div role="status" aria-live="polite">
          <p>Your payment is processing: a bank payment can take a few days. Access appears in My account once it clears; you can leave this page.</p>
        </div>
      ) : paid && status ? (
        <div role="status">
          <p class="success-text">
            <strong>Thank you! “{status.courseTitle}” is yours.</strong>
          </p>
          {status.currency && <p class="muted">Paid {formatFiat(status.amount, status.currency)} by card.</p>}
          <Link class="button" href={`/courses/${status.courseId}/lessons/1`}>
            Start learning
          </Link>
        </div>
      ) : (
        <div role="status" aria-live="polite">
          <p>
            <span class="spinner" aria-hidden="true" /> Waiting for the card payment to be confirmed… This page updates by itself.
          </p>
          {slow && <p class="muted">This is taking longer than usual. You can leave: access will appear in My account.</p>}
        </div>
      )}
      {error && !finished && !notFound && <Alert kind="warning">{error}</Alert>}
    </section>
  );
}
