// Where Stripe sends the buyer back: wait for the webhook to mark the order paid and grant access.
import { useEffect, useState } from "preact/hooks";
import { api, errorMessage } from "../api";
import { Alert, useInterval, usePageTitle } from "../components/ui";
import { formatFiat } from "../format";
import { PENDING_CARD_KEY } from "../purchase";
import { Link, useLocation } from "../router";

interface CardOrderStatus {
  orderId?: string;
  id?: string;
  status: string;
  courseId?: number;
  hasAccess?: boolean;
  accessGranted?: boolean;
  amount?: number | string;
  currency?: string;
  courseTitle?: string;
}

const DONE = new Set(["paid", "fulfilled", "complete", "completed"]);
const FAILED = new Set(["failed", "expired", "canceled", "cancelled", "refunded", "lost"]);

export function CheckoutReturnPage() {
  usePageTitle("Payment");
  const location = useLocation();
  const sessionId = location.query.get("session_id");
  const canceled = location.query.get("canceled") !== null || location.query.get("cancelled") !== null;
  const [pending] = useState(() => {
    try {
      return JSON.parse(sessionStorage.getItem(PENDING_CARD_KEY) ?? "null") as { orderId: string; sessionId: string; courseId: number } | null;
    } catch {
      return null;
    }
  });
  const orderId = location.query.get("order") ?? (pending && (!sessionId || pending.sessionId === sessionId) ? pending.orderId : null);
  const [status, setStatus] = useState<CardOrderStatus | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [startedAt] = useState(Date.now());

  const key = orderId ?? sessionId;
  const finished = status !== null && (FAILED.has(status.status) || (DONE.has(status.status) && status.hasAccess !== false && status.accessGranted !== false));

  const poll = async () => {
    if (!key) return;
    try {
      const s = await api<CardOrderStatus>(`/checkout/stripe/${encodeURIComponent(key)}`);
      setStatus(s);
      setError(null);
    } catch (err) {
      setError(errorMessage(err));
    }
  };
  useEffect(() => {
    poll();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [key]);
  useInterval(poll, 1500, Boolean(key) && !finished && !canceled && Date.now() - startedAt < 10 * 60_000);

  const courseId = status?.courseId ?? pending?.courseId;
  const slow = Date.now() - startedAt > 30_000;

  return (
    <section class="card checkout-return" aria-labelledby="return-title" data-testid="checkout-return" data-status={status?.status ?? "unknown"}>
      <h1 id="return-title" tabIndex={-1}>
        {canceled ? "Payment canceled" : finished && status && DONE.has(status.status) ? "Payment received" : "Confirming your payment"}
      </h1>
      {canceled ? (
        <p>No money was taken. {courseId && <Link href={`/courses/${courseId}`}>Back to the course</Link>}</p>
      ) : !key ? (
        <Alert>We could not tell which payment this is. Your access will still appear in My account once the payment clears.</Alert>
      ) : status && FAILED.has(status.status) ? (
        <Alert>The payment did not go through ({status.status}). No access was granted.</Alert>
      ) : finished ? (
        <div role="status">
          <p class="success-text">
            <strong>Thank you! {status?.courseTitle ? `“${status.courseTitle}” is yours.` : "The course is yours."}</strong>
          </p>
          {status?.amount !== undefined && status.currency && <p class="muted">Paid {formatFiat(status.amount, status.currency)} by card.</p>}
          {courseId && (
            <Link class="button" href={`/courses/${courseId}/lessons/1`}>
              Start learning
            </Link>
          )}
        </div>
      ) : (
        <div role="status" aria-live="polite">
          <p>
            <span class="spinner" aria-hidden="true" /> Waiting for the card payment to be confirmed… This page updates by itself.
          </p>
          {slow && <p class="muted">This is taking longer than usual. You can leave: access will appear in My account.</p>}
        </div>
      )}
      {error && !finished && <Alert kind="warning">{error}</Alert>}
    </section>
  );
}
