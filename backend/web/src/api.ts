// The HTTP API client. Same-origin fetch with the session cookie: the browser sends our own
// Origin header, which is what the API's CSRF check wants for cookie-authenticated writes.

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly details: unknown;

  constructor(status: number, code: string, message: string, details?: unknown) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

export const API = "/api/v1";

type Method = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";

export interface RequestOptions {
  method?: Method;
  body?: unknown;
  signal?: AbortSignal;
  query?: Record<string, string | number | boolean | null | undefined>;
}

export async function api<T>(path: string, options: RequestOptions = {}): Promise<T> {
  const { method = options.body === undefined ? "GET" : "POST", body, signal, query } = options;
  let url = path.startsWith("/api/") ? path : `${API}${path}`;
  if (query) {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) {
      if (value !== null && value !== undefined) params.set(key, String(value));
    }
    const qs = params.toString();
    if (qs) url += (url.includes("?") ? "&" : "?") + qs;
  }
  const headers: Record<string, string> = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response: Response;
  try {
    response = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      signal,
    });
  } catch (err) {
    if ((err as Error).name === "AbortError") throw err;
    throw new ApiError(0, "network_error", "Cannot reach the Tuition server. Check your connection.");
  }
  if (response.status === 204) return undefined as T;
  const text = await response.text();
  let data: unknown = undefined;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = undefined;
    }
  }
  if (!response.ok) {
    const error = (data as { error?: { code?: string; message?: string; details?: unknown } })?.error;
    const detail = (data as { detail?: unknown })?.detail;
    throw new ApiError(
      response.status,
      error?.code ?? `http_${response.status}`,
      error?.message ?? (typeof detail === "string" ? detail : `Request failed (${response.status}).`),
      error?.details,
    );
  }
  return data as T;
}

/** Paginated list responses: accept `{items: [...]}`, `{data: [...]}` or a bare array. */
export function itemsOf<T>(page: unknown): T[] {
  if (Array.isArray(page)) return page as T[];
  if (page && typeof page === "object") {
    const obj = page as Record<string, unknown>;
    for (const key of ["items", "data", "results", "courses", "orders", "entitlements", "certificates", "sales"]) {
      if (Array.isArray(obj[key])) return obj[key] as T[];
    }
  }
  return [];
}

export function errorMessage(err: unknown): string {
  if (err instanceof ApiError) return err.message;
  const walletMessage = walletErrorMessage(err);
  if (walletMessage) return walletMessage;
  if (err instanceof Error) return err.message;
  return String(err);
}

/** EIP-1193 error codes, found on the error itself or on a wrapped cause (viem wraps them). */
export function rpcErrorCode(err: unknown): number | undefined {
  let current: unknown = err;
  for (let depth = 0; current && depth < 6; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === "number") return code;
    const next =
      (current as { cause?: unknown }).cause ??
      (current as { data?: { originalError?: unknown } }).data?.originalError;
    current = next;
  }
  return undefined;
}

export function isUserRejection(err: unknown): boolean {
  return rpcErrorCode(err) === 4001;
}

function walletErrorMessage(err: unknown): string | undefined {
  const code = rpcErrorCode(err);
  if (code === 4001) return "You rejected the request in your wallet. Nothing was changed.";
  if (code === 4100) return "Your wallet has not authorized this site. Connect it again.";
  if (code === 4900 || code === 4901) return "Your wallet is disconnected from the network.";
  if (code === -32002) return "Your wallet already has a pending request: open it to continue.";
  const short = (err as { shortMessage?: string })?.shortMessage;
  if (short) return short;
  return undefined;
}
