// API resources as the UI uses them. The normalisers accept the API's field names (camelCase,
// with a few snake_case fallbacks) and turn money into bigint.
import { getAddress, type Address } from "viem";
import { api, itemsOf } from "./api";
import { config, tokenByAddress, tokenBySymbol, NATIVE } from "./config";

type Raw = Record<string, any>;

export interface Price {
  token: Address;
  symbol: string;
  decimals: number;
  amount: bigint;
}

export interface LessonSummary {
  position: number;
  title: string;
  completed?: boolean;
}

/** Where a course is registered: its id on that chain's market, and whether it is for sale. */
export interface CourseChain {
  chainId: number;
  onchainId: string;
  listed: boolean;
}

export interface Course {
  id: number;
  /** The chain `onchainId` and `prices` are for (the API's own unless asked for another). */
  chainId: number | null;
  onchainId: string | null;
  chains: CourseChain[];
  title: string;
  description: string;
  provider: Address | null;
  status: string;
  listed: boolean;
  lessons: LessonSummary[];
  lessonCount: number;
  prices: Price[];
  fiat: { amount: bigint; currency: string } | null;
  refundWindow: number;
  /** mint: the platform mints the certificate; voucher: the learner claims it (and pays gas). */
  certificateMode: "mint" | "voucher";
}

function pick<T = any>(obj: Raw | undefined | null, ...keys: string[]): T | undefined {
  if (!obj) return undefined;
  for (const key of keys) {
    if (obj[key] !== undefined && obj[key] !== null) return obj[key] as T;
  }
  return undefined;
}

function addr(value: unknown): Address | null {
  if (typeof value !== "string") return null;
  try {
    return getAddress(value);
  } catch {
    return null;
  }
}

export function toPrice(raw: Raw, chainId?: number | null): Price | null {
  const tokenField = pick(raw, "token", "tokenAddress", "token_address", "address");
  const tokenObj = typeof tokenField === "object" && tokenField ? (tokenField as Raw) : null;
  const address = addr(tokenObj ? pick(tokenObj, "address") : tokenField) ?? tokenBySymbol(pick(raw, "symbol"), chainId)?.address ?? null;
  if (!address) return null;
  const known = tokenByAddress(address, pick(tokenObj, "chainId") ?? chainId);
  const amount = pick(raw, "amount", "price", "value", "baseUnits");
  if (amount === undefined || pick(raw, "accepted") === false) return null;
  return {
    token: address,
    symbol: pick(tokenObj, "symbol") ?? pick(raw, "symbol") ?? known?.symbol ?? "?",
    decimals: Number(pick(tokenObj, "decimals") ?? pick(raw, "decimals") ?? known?.decimals ?? 18),
    amount: BigInt(amount),
  };
}

function toFiat(raw: Raw): Course["fiat"] {
  const fiat = pick<Raw>(raw, "fiat", "fiatPrice", "fiat_price", "card");
  if (fiat && typeof fiat === "object") {
    const amount = pick(fiat, "amount", "minor", "unitAmount", "price");
    const currency = pick(fiat, "currency");
    if (amount !== undefined && currency) return { amount: BigInt(amount), currency: String(currency) };
    return null;
  }
  if (fiat !== undefined && (typeof fiat === "number" || typeof fiat === "string")) {
    const currency = pick(raw, "fiatCurrency", "fiat_currency", "currency");
    if (currency) return { amount: BigInt(fiat), currency: String(currency) };
  }
  return null;
}

/** A course as the API sent it; its prices are those of `chainId` (the API's own by default). */
export function toCourse(raw: Raw, chainId: number | null = config().chainId): Course {
  const lessonsRaw = pick<Raw[]>(raw, "lessons", "outline") ?? [];
  const lessons = lessonsRaw.map((l, i) => ({
    position: Number(pick(l, "position", "n", "number", "index") ?? i + 1),
    title: String(pick(l, "title") ?? `Lesson ${i + 1}`),
    completed: pick(l, "completed"),
  }));
  const pricesRaw = pick<Raw[] | Raw>(raw, "prices", "tokenPrices", "token_prices") ?? [];
  const priceList = Array.isArray(pricesRaw)
    ? pricesRaw
    : Object.entries(pricesRaw).map(([k, v]) => (typeof v === "object" ? { token: k, ...(v as Raw) } : { token: k, amount: v }));
  const prices = priceList.map((p) => toPrice(p, chainId)).filter((p): p is Price => p !== null);
  const chains = (pick<Raw[]>(raw, "chains") ?? []).map((c) => ({
    chainId: Number(pick(c, "chainId", "chain_id")),
    onchainId: String(pick(c, "onchainId", "onchain_id")),
    listed: Boolean(pick(c, "listed") ?? true),
  }));
  // Native coin first, then by symbol.
  prices.sort((a, b) => (a.token === NATIVE ? -1 : b.token === NATIVE ? 1 : a.symbol.localeCompare(b.symbol)));
  const onchain = pick(raw, "onchainId", "onchain_id", "chainCourseId");
  const status = String(pick(raw, "status") ?? "published");
  return {
    id: Number(pick(raw, "id", "courseId")),
    chainId,
    onchainId: onchain === undefined ? null : String(onchain),
    chains,
    title: String(pick(raw, "title") ?? "Untitled course"),
    description: String(pick(raw, "description", "summary") ?? ""),
    provider: addr(pick(raw, "provider", "providerAddress")),
    status,
    listed: Boolean(pick(raw, "listed", "listedOnchain", "listed_onchain") ?? status === "published"),
    lessons,
    lessonCount: Number(pick(raw, "lessonCount", "lesson_count") ?? lessons.length),
    prices,
    fiat: toFiat(raw),
    refundWindow: Number(pick(raw, "refundWindow", "refund_window") ?? 0),
    certificateMode: pick(raw, "certificateMode") === "voucher" ? "voucher" : "mint",
  };
}

export async function fetchCourses(query: Record<string, string | number | undefined> = {}): Promise<Course[]> {
  const page = await api<unknown>("/courses", { query: { limit: 50, ...query } });
  return itemsOf<Raw>(page).map((c) => toCourse(c));
}

/** A course with its on-chain id and prices on `chainId` (the API's own chain by default). */
export async function fetchCourse(id: number | string, chainId?: number): Promise<Course> {
  const raw = await api<Raw>(`/courses/${id}`, { query: chainId === undefined ? {} : { chainId } });
  return toCourse((raw.course as Raw) ?? raw, chainId ?? config().chainId);
}

// ------------------------------------------------------------------ access and lessons

export interface Access {
  hasAccess: boolean;
  source: string | null;
  since: string | null;
}

export async function fetchAccess(courseId: number, address: string): Promise<Access> {
  const raw = await api<Raw>(`/courses/${courseId}/access`, { query: { address } });
  return {
    hasAccess: Boolean(pick(raw, "hasAccess", "has_access")),
    source: pick(raw, "source") ?? null,
    since: pick(raw, "since", "grantedAt") ?? null,
  };
}

export interface Lesson {
  position: number;
  title: string;
  body: string;
  completed: boolean;
  total: number;
}

export function toLesson(raw: Raw, n: number): Lesson {
  const l = (raw.lesson as Raw) ?? raw;
  return {
    position: Number(pick(l, "position", "n", "number") ?? n),
    title: String(pick(l, "title") ?? `Lesson ${n}`),
    body: String(pick(l, "body", "content", "text") ?? ""),
    completed: Boolean(pick(l, "completed") ?? pick(raw, "completed")),
    total: Number(pick(raw, "total", "lessonCount", "lesson_count") ?? pick(l, "total", "lessonCount") ?? 0),
  };
}

export interface Progress {
  completed: number;
  total: number;
  courseCompleted: boolean;
  completedLessons: number[];
}

export function toProgress(raw: Raw | undefined | null): Progress | null {
  if (!raw) return null;
  const p = (pick<Raw>(raw, "progress") ?? raw) as Raw;
  const completedLessons = (pick<number[]>(p, "completedLessons", "completed_lessons") ?? []).map(Number);
  const completedRaw = pick(p, "completed", "completedCount", "completed_count");
  const completed = typeof completedRaw === "number" ? completedRaw : completedLessons.length;
  const total = Number(pick(p, "total", "lessonCount", "lesson_count") ?? 0);
  return {
    completed,
    total,
    courseCompleted: Boolean(pick(p, "courseCompleted", "course_completed") ?? (total > 0 && completed >= total)),
    completedLessons,
  };
}

// ------------------------------------------------------------------ orders, entitlements, certificates

export interface Order {
  id: string;
  rail: "crypto" | "card";
  courseId: number;
  courseTitle: string | null;
  status: string;
  amount: bigint;
  token: Address | null;
  currency: string | null;
  /** The chain a crypto order is paid on. */
  chainId: number | null;
  txHash: string | null;
  createdAt: string | null;
  paidAt: string | null;
  buyer: string | null;
  recipient: string | null;
}

export function toOrder(raw: Raw): Order {
  const course = pick<Raw>(raw, "course");
  return {
    id: String(pick(raw, "id", "orderId")),
    rail: (pick(raw, "rail") ?? (pick(raw, "currency") ? "card" : "crypto")) as Order["rail"],
    courseId: Number(pick(raw, "courseId", "course_id") ?? pick(course, "id")),
    courseTitle: pick(raw, "courseTitle", "course_title") ?? pick(course, "title") ?? null,
    status: String(pick(raw, "status") ?? "pending"),
    amount: BigInt(pick(raw, "amount") ?? 0),
    token: addr(typeof raw.token === "object" && raw.token ? raw.token.address : pick(raw, "token", "tokenAddress")),
    currency: pick(raw, "currency") ?? null,
    chainId: pick(raw, "chainId", "chain_id") == null ? null : Number(pick(raw, "chainId", "chain_id")),
    txHash: pick(raw, "txHash", "tx_hash") ?? null,
    createdAt: pick(raw, "createdAt", "created_at") ?? null,
    paidAt: pick(raw, "paidAt", "paid_at") ?? null,
    buyer: pick(raw, "buyer") ?? null,
    recipient: pick(raw, "recipient") ?? null,
  };
}

export interface Entitlement {
  courseId: number;
  courseTitle: string | null;
  source: string;
  since: string | null;
  progress: Progress | null;
  active: boolean;
}

export function toEntitlement(raw: Raw): Entitlement {
  const course = pick<Raw>(raw, "course");
  return {
    courseId: Number(pick(raw, "courseId", "course_id") ?? pick(course, "id")),
    courseTitle: pick(raw, "courseTitle", "course_title", "title") ?? pick(course, "title") ?? null,
    source: String(pick(raw, "source") ?? ""),
    since: pick(raw, "since", "grantedAt", "granted_at") ?? null,
    progress: toProgress(pick(raw, "progress")),
    active: pick(raw, "active") ?? !pick(raw, "revokedAt", "revoked_at"),
  };
}

export interface CertificateInfo {
  id: string | number | null;
  courseId: number;
  courseTitle: string | null;
  /** The chain it is (to be) issued on. */
  chainId: number | null;
  status: string; // requested | minting | minted | claimable | revoked | removed
  mode: "mint" | "voucher";
  tokenId: string | null;
  replacedByTokenId: string | null; // a corrected certificate's successor
  txHash: string | null;
  recordHash: string | null;
  record: Raw | null;
  voucher: { onchainCourseId: string; recordHash: string; deadline: string; signature: string } | null;
}

export function toCertificate(raw: Raw): CertificateInfo {
  const course = pick<Raw>(raw, "course");
  const voucherRaw = pick<Raw>(raw, "voucher");
  const recordHash = pick(raw, "recordHash", "record_hash") ?? pick(voucherRaw, "recordHash") ?? null;
  const signature = pick(voucherRaw, "signature") ?? pick(raw, "voucherSignature", "voucher_signature");
  const deadline = pick(voucherRaw, "deadline") ?? pick(raw, "voucherDeadline", "voucher_deadline");
  const onchainCourseId = pick(voucherRaw, "courseId", "onchainCourseId") ?? pick(raw, "onchainCourseId") ?? pick(course, "onchainId");
  return {
    id: pick(raw, "id") ?? null,
    courseId: Number(pick(raw, "courseId", "course_id") ?? pick(course, "id")),
    courseTitle: pick(raw, "courseTitle", "course_title") ?? pick(course, "title") ?? null,
    chainId: pick(raw, "chainId", "chain_id") == null ? null : Number(pick(raw, "chainId", "chain_id")),
    status: String(pick(raw, "status") ?? "requested"),
    mode: pick(raw, "mode") === "voucher" ? "voucher" : "mint",
    tokenId: pick(raw, "tokenId", "token_id") != null ? String(pick(raw, "tokenId", "token_id")) : null,
    replacedByTokenId: pick(raw, "replacedByTokenId") != null ? String(pick(raw, "replacedByTokenId")) : null,
    txHash: pick(raw, "txHash", "tx_hash") ?? null,
    recordHash,
    record: pick(raw, "record") ?? null,
    voucher:
      signature && deadline !== undefined && recordHash
        ? { onchainCourseId: String(onchainCourseId ?? ""), recordHash, deadline: String(deadline), signature }
        : null,
  };
}

export async function fetchMyCertificates(): Promise<CertificateInfo[]> {
  return itemsOf<Raw>(await api<unknown>("/me/certificates")).map(toCertificate);
}

export async function fetchMyEntitlements(): Promise<Entitlement[]> {
  return itemsOf<Raw>(await api<unknown>("/me/entitlements")).map(toEntitlement);
}

export async function fetchMyOrders(): Promise<Order[]> {
  return itemsOf<Raw>(await api<unknown>("/me/orders")).map(toOrder);
}

// ------------------------------------------------------------------ provider payouts

export interface Payout {
  id: number;
  chainId: number | null;
  /** released: escrow became withdrawable (net, with the platform fee beside it); withdrawn: paid out. */
  kind: string;
  token: { address: Address | null; symbol: string; decimals: number };
  amount: bigint;
  fee: bigint;
  txHash: string;
  logIndex: number;
  blockNumber: number;
  recordedAt: string | null;
}

export interface PayoutPage {
  payouts: Payout[];
  /** The `before` of the next (older) page, or null on the last one. */
  nextBefore: number | null;
}

export function toPayout(raw: Raw): Payout {
  const tokenRaw = pick<Raw>(raw, "token");
  const tokenObj = typeof tokenRaw === "object" && tokenRaw ? tokenRaw : null;
  const address = addr(tokenObj ? pick(tokenObj, "address") : tokenRaw);
  const chainRaw = pick(raw, "chainId", "chain_id") ?? pick(tokenObj, "chainId");
  const chainId = chainRaw == null ? null : Number(chainRaw);
  const known = tokenByAddress(address, chainId);
  return {
    id: Number(pick(raw, "id")),
    chainId,
    kind: String(pick(raw, "kind") ?? ""),
    token: {
      address,
      symbol: String(pick(tokenObj, "symbol") ?? known?.symbol ?? "?"),
      decimals: Number(pick(tokenObj, "decimals") ?? known?.decimals ?? 18),
    },
    amount: BigInt(pick(raw, "amount") ?? 0),
    fee: BigInt(pick(raw, "fee") ?? 0),
    txHash: String(pick(raw, "txHash", "tx_hash") ?? ""),
    logIndex: Number(pick(raw, "logIndex", "log_index") ?? 0),
    blockNumber: Number(pick(raw, "blockNumber", "block_number") ?? 0),
    recordedAt: pick(raw, "recordedAt", "recorded_at") ?? null,
  };
}

/** One page of the signed-in provider's payout ledger, newest first. */
export async function fetchPayouts(
  { before, limit, signal }: { before?: number | null; limit?: number; signal?: AbortSignal } = {},
): Promise<PayoutPage> {
  const raw = await api<Raw>("/provider/payouts", { query: { before, limit }, signal });
  const next = pick(raw, "nextBefore", "next_before");
  return { payouts: itemsOf<Raw>(raw.payouts ?? []).map(toPayout), nextBefore: next == null ? null : Number(next) };
}
