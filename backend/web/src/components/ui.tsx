// Small shared pieces: async data hook, alerts, prices, transaction status.
import type { ComponentChildren } from "preact";
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { errorMessage } from "../api";
import { explorerTxUrl } from "../config";
import { formatFiat, formatToken, shortHash } from "../format";
import type { Course, Price } from "../models";
import type { TxProgress } from "../purchase";

export interface AsyncState<T> {
  data: T | undefined;
  error: string | null;
  loading: boolean;
  reload: () => void;
}

export function useAsync<T>(load: (signal: AbortSignal) => Promise<T>, deps: unknown[]): AsyncState<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    const controller = new AbortController();
    setLoading(true);
    setError(null);
    load(controller.signal)
      .then((value) => {
        if (!controller.signal.aborted) setData(value);
      })
      .catch((err) => {
        if (!controller.signal.aborted) setError(errorMessage(err));
      })
      .finally(() => {
        if (!controller.signal.aborted) setLoading(false);
      });
    return () => controller.abort();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { data, error, loading, reload };
}

/** Run `fn` every `ms` while `active`. */
export function useInterval(fn: () => void, ms: number, active: boolean): void {
  const saved = useRef(fn);
  saved.current = fn;
  useEffect(() => {
    if (!active) return;
    const id = window.setInterval(() => saved.current(), ms);
    return () => window.clearInterval(id);
  }, [ms, active]);
}

export function Alert({ kind = "error", children, id }: { kind?: "error" | "info" | "success" | "warning"; children: ComponentChildren; id?: string }) {
  // Errors interrupt (role=alert); the rest is announced politely.
  return (
    <div id={id} class={`alert alert-${kind}`} role={kind === "error" ? "alert" : "status"}>
      {children}
    </div>
  );
}

export function Loading({ label = "Loading…" }: { label?: string }) {
  return (
    <p class="loading" role="status" aria-live="polite">
      <span class="spinner" aria-hidden="true" /> {label}
    </p>
  );
}

export function PriceList({ course }: { course: Course }) {
  if (!course.prices.length && !course.fiat) return <p class="muted">Not for sale yet.</p>;
  return (
    <ul class="price-list" aria-label="Prices">
      {course.prices.map((p) => (
        <li key={p.token} data-token={p.symbol}>
          <PriceTag price={p} />
        </li>
      ))}
      {course.fiat && course.fiat.amount === 0n && (
        <li data-token="card">
          <span class="price">Free</span>
        </li>
      )}
      {course.fiat && course.fiat.amount > 0n && (
        <li data-token="card">
          <span class="price">{formatFiat(course.fiat.amount, course.fiat.currency)}</span> <span class="muted">by card</span>
        </li>
      )}
    </ul>
  );
}

export function PriceTag({ price }: { price: Price }) {
  if (price.amount === 0n) return <span class="price">Free</span>;
  return <span class="price">{formatToken(price.amount, price.decimals, price.symbol)}</span>;
}

export function TxHash({ hash, label = "Transaction", chainId }: { hash: string; label?: string; chainId?: number | null }) {
  const url = explorerTxUrl(hash, chainId);
  return (
    <span class="tx-hash">
      {label}{" "}
      {url ? (
        <a href={url} target="_blank" rel="noopener noreferrer">
          <code title={hash} data-hash={hash}>
            {shortHash(hash)}
          </code>
        </a>
      ) : (
        <code title={hash} data-hash={hash}>
          {shortHash(hash)}
        </code>
      )}
    </span>
  );
}

export function TxStatus({ progress, testId = "tx-status" }: { progress: TxProgress; testId?: string }) {
  if (progress.phase === "idle") return null;
  const kind =
    progress.phase === "failed" ? "error" : progress.phase === "confirmed" ? "success" : "info";
  const busy = progress.phase === "working" || progress.phase === "wallet" || progress.phase === "pending";
  return (
    <div class={`alert alert-${kind} tx-status`} role={kind === "error" ? "alert" : "status"} aria-live="polite" data-testid={testId} data-phase={progress.phase}>
      <p>
        {busy && <span class="spinner" aria-hidden="true" />} <strong>{phaseLabel(progress.phase)}</strong> {progress.message}
      </p>
      {progress.approveHash && (
        <p>
          <TxHash hash={progress.approveHash} label="Approval" chainId={progress.chainId} />
        </p>
      )}
      {progress.hash && (
        <p>
          <TxHash hash={progress.hash} chainId={progress.chainId} />
        </p>
      )}
    </div>
  );
}

function phaseLabel(phase: TxProgress["phase"]): string {
  switch (phase) {
    case "working":
      return "Preparing.";
    case "wallet":
      return "Waiting for your wallet.";
    case "pending":
      return "Pending.";
    case "confirmed":
      return "Confirmed.";
    case "failed":
      return "Failed.";
    default:
      return "";
  }
}

/** Set the document title and move focus to the page heading on navigation. */
export function usePageTitle(title: string): void {
  useEffect(() => {
    document.title = title ? `${title} · Tuition` : "Tuition";
  }, [title]);
}

export function CopyButton({ text, label = "Copy" }: { text: string; label?: string }) {
  const [copied, setCopied] = useState(false);
  return (
    <button
      type="button"
      class="button-small"
      onClick={async () => {
        try {
          await navigator.clipboard.writeText(text);
          setCopied(true);
          window.setTimeout(() => setCopied(false), 1500);
        } catch {
          /* clipboard blocked */
        }
      }}
    >
      {copied ? "Copied" : label}
    </button>
  );
}
