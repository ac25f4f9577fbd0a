// Buying a course: crypto (native coin, ERC-20 with EIP-2612 permit, or approve-then-purchase
// with the exact amount) and card (Stripe Checkout redirect).
import {
  BaseError,
  ContractFunctionRevertedError,
  decodeErrorResult,
  decodeFunctionData,
  domainSeparator,
  encodeFunctionData,
  getAddress,
  parseSignature,
  type Address,
  type Hash,
  type Hex,
  type TransactionReceipt,
} from "viem";
import { api, errorMessage } from "./api";
import { clientOn, erc20Abi, MARKET_ERROR_TEXT, marketAbi } from "./chain";
import { chainLabel, networkOf, type TokenInfo } from "./config";
import { fetchAccess } from "./models";
import { ensureChain, sendTransaction, signTypedData, walletStore, type TxRequest } from "./wallet";

export type TxPhase = "idle" | "working" | "wallet" | "pending" | "confirmed" | "failed";

export interface TxProgress {
  phase: TxPhase;
  message: string;
  hash?: Hash;
  /** Hash of a preceding approve transaction, when there was one. */
  approveHash?: Hash;
  /** The chain the transactions went to (the API's own when absent). */
  chainId?: number;
  error?: string;
}

export type ProgressFn = (p: TxProgress) => void;

/** Wait for a receipt on the chain's RPC; a revert becomes an Error with the reason. */
export async function waitForReceipt(hash: Hash, chainId?: number): Promise<TransactionReceipt> {
  const receipt = await clientOn(chainId).waitForTransactionReceipt({ hash, timeout: 120_000, pollingInterval: 500 });
  if (receipt.status !== "success") throw new Error(`The transaction failed on-chain (reverted). Hash ${hash}.`);
  return receipt;
}

/** Send one transaction and report wallet → pending → confirmed. */
export async function sendAndWait(tx: TxRequest, label: string, onProgress: ProgressFn): Promise<TransactionReceipt> {
  const from = walletStore.get().address;
  const chainId = tx.chainId;
  if (from) await simulate(from, tx);
  onProgress({ phase: "wallet", message: `Confirm “${label}” in your wallet…`, chainId });
  const hash = await sendTransaction(tx);
  const where = chainId === undefined ? "" : ` on ${chainLabel(chainId)}`;
  onProgress({ phase: "pending", message: `${label} sent${where}; waiting for it to be mined…`, hash, chainId });
  const receipt = await waitForReceipt(hash, chainId);
  onProgress({ phase: "confirmed", message: `${label} mined${where} in block ${receipt.blockNumber}.`, hash, chainId });
  return receipt;
}

/** The custom error a failed call reverted with, decoded with the market's ABI. */
export function revertReason(err: unknown): string | null {
  if (!(err instanceof BaseError)) return null;
  const revert = err.walk((e) => e instanceof ContractFunctionRevertedError);
  if (revert instanceof ContractFunctionRevertedError && revert.data?.errorName) {
    return MARKET_ERROR_TEXT[revert.data.errorName] ?? revert.data.errorName;
  }
  const raw = err.walk((e) => typeof (e as { data?: unknown }).data === "string") as { data?: string } | null;
  if (raw?.data && raw.data.length >= 10) {
    try {
      const decoded = decodeErrorResult({ abi: marketAbi, data: raw.data as Hex });
      return MARKET_ERROR_TEXT[decoded.errorName] ?? decoded.errorName;
    } catch {
      /* not one of ours */
    }
  }
  return null;
}

/** Simulate a call first so a revert shows its reason instead of a generic wallet error. */
async function simulate(from: Address, tx: TxRequest): Promise<void> {
  try {
    await clientOn(tx.chainId).call({ account: from, to: tx.to, data: tx.data, value: tx.value === undefined ? undefined : BigInt(tx.value) });
  } catch (err) {
    const reason = revertReason(err);
    if (reason) throw new Error(reason);
    if (err instanceof BaseError) throw new Error(`The transaction would fail: ${err.shortMessage}`);
    throw err;
  }
}

// ------------------------------------------------------------------ crypto

interface CryptoOrderResponse {
  order?: { id?: string; orderRef?: string; amount?: string } & Record<string, unknown>;
  tx?: { to: string; data: Hex; value?: string | number; chainId?: number };
  transaction?: { to: string; data: Hex; value?: string | number; chainId?: number };
  id?: string;
}

export interface PurchaseResult {
  orderId: string | null;
  hash: Hash;
}

/** Does `token` implement EIP-2612 (nonces + DOMAIN_SEPARATOR), and with which EIP-712 domain? */
export async function permitDomain(token: Address, chainId: number): Promise<{ name: string; version: string } | null> {
  const pc = clientOn(chainId);
  try {
    const [separator, owner] = await Promise.all([
      pc.readContract({ address: token, abi: erc20Abi, functionName: "DOMAIN_SEPARATOR" }),
      walletStore.get().address,
    ]);
    if (!owner) return null;
    await pc.readContract({ address: token, abi: erc20Abi, functionName: "nonces", args: [owner] });
    let name: string;
    let version = "1";
    try {
      const domain = await pc.readContract({ address: token, abi: erc20Abi, functionName: "eip712Domain" });
      name = domain[1];
      version = domain[2];
    } catch {
      name = await pc.readContract({ address: token, abi: erc20Abi, functionName: "name" });
    }
    // Only trust the domain if it reproduces the token's own separator.
    const expected = domainSeparator({ domain: { name, version, chainId, verifyingContract: token } });
    return expected.toLowerCase() === separator.toLowerCase() ? { name, version } : null;
  } catch {
    return null;
  }
}

/** Buy `courseId` on chain `chainId` with `token` (one of that chain's): quote, then permit or
 * approve when needed, then the purchase, with the wallet switched to that chain. */
export async function buyWithCrypto(
  courseId: number,
  chainId: number,
  token: TokenInfo,
  onProgress: ProgressFn,
  recipient?: Address,
): Promise<PurchaseResult> {
  const owner = walletStore.get().address;
  if (!owner) throw new Error("Connect a wallet first.");
  const network = networkOf(chainId);
  if (!network) throw new Error(`Tuition does not run on chain ${chainId}.`);
  if (walletStore.get().chainId !== chainId) {
    // Switch before quoting: a refused switch leaves no order behind.
    onProgress({ phase: "wallet", message: `Switch your wallet to ${network.chainName} to pay there…`, chainId });
    await ensureChain(chainId);
  }
  onProgress({ phase: "working", message: `Getting a price quote on ${network.chainName}…`, chainId });
  const quote = await api<CryptoOrderResponse>("/orders/crypto", {
    method: "POST",
    body: { courseId, token: token.address, chainId, ...(recipient ? { recipient } : {}) },
  });
  const orderId = (quote.order?.id ?? quote.id ?? null) as string | null;
  const rawTx = quote.tx ?? quote.transaction;
  if (!rawTx) throw new Error("The server returned no transaction to sign.");
  if (rawTx.chainId !== undefined && Number(rawTx.chainId) !== chainId) {
    throw new Error(`The quote is for chain ${rawTx.chainId}, not ${network.chainName} (chain ${chainId}).`);
  }
  const tx: TxRequest = { to: getAddress(rawTx.to), data: rawTx.data, value: rawTx.value ?? 0, chainId };
  const market = network.contracts.market;
  if (market && tx.to.toLowerCase() !== market.toLowerCase()) {
    throw new Error("The quote's transaction is not addressed to the Tuition market contract.");
  }
  const decoded = decodeFunctionData({ abi: marketAbi, data: rawTx.data });
  if (decoded.functionName !== "purchase") throw new Error(`Unexpected quote call ${decoded.functionName}.`);
  const [onchainCourseId, payToken, maxAmount, payRecipient, orderRef, quotedWindow] = decoded.args as readonly [
    bigint,
    Address,
    bigint,
    Address,
    Hex,
    number,
  ];
  if (payToken.toLowerCase() !== token.address.toLowerCase()) throw new Error("The quote is for another token.");

  let finalTx: TxRequest = tx;
  const pc = clientOn(chainId);
  if (token.native) {
    const balance = await pc.getBalance({ address: owner });
    if (balance < BigInt(tx.value ?? 0)) throw new Error(`Not enough ${token.symbol} in your wallet for this price plus gas.`);
  } else {
    const balance = await pc.readContract({ address: token.address, abi: erc20Abi, functionName: "balanceOf", args: [owner] });
    if (balance < maxAmount) throw new Error(`Not enough ${token.symbol} in your wallet.`);
    const domain = await permitDomain(token.address, chainId);
    if (domain) {
      // EIP-2612: one signature instead of an approve transaction.
      const nonce = await pc.readContract({ address: token.address, abi: erc20Abi, functionName: "nonces", args: [owner] });
      // The token checks the deadline against block time, which may run ahead of this clock.
      const block = await pc.getBlock({ blockTag: "latest" });
      const now = BigInt(Math.floor(Date.now() / 1000));
      const deadline = (block.timestamp > now ? block.timestamp : now) + 30n * 60n;
      onProgress({ phase: "wallet", message: `Sign the ${token.symbol} permit in your wallet (no gas)…` });
      const signature = await signTypedData({
        domain: { name: domain.name, version: domain.version, chainId, verifyingContract: token.address },
        types: {
          Permit: [
            { name: "owner", type: "address" },
            { name: "spender", type: "address" },
            { name: "value", type: "uint256" },
            { name: "nonce", type: "uint256" },
            { name: "deadline", type: "uint256" },
          ],
        },
        primaryType: "Permit",
        message: { owner, spender: tx.to, value: maxAmount, nonce, deadline },
      });
      const { r, s, v, yParity } = parseSignature(signature);
      const vNumber = v !== undefined ? Number(v) : 27 + (yParity ?? 0);
      finalTx = {
        to: tx.to,
        data: encodeFunctionData({
          abi: marketAbi,
          functionName: "purchaseWithPermit",
          // The quote's refund window binds the market too (RefundWindowBelowQuote).
          args: [onchainCourseId, payToken, maxAmount, payRecipient, orderRef, quotedWindow, deadline, vNumber, r, s],
        }),
        value: 0n,
        chainId,
      };
    } else {
      // Approve exactly the price (never an unlimited allowance), then purchase.
      const allowance = await pc.readContract({
        address: token.address,
        abi: erc20Abi,
        functionName: "allowance",
        args: [owner, tx.to],
      });
      if (allowance < maxAmount) {
        const approve: TxRequest = {
          to: token.address,
          data: encodeFunctionData({ abi: erc20Abi, functionName: "approve", args: [tx.to, maxAmount] }),
          chainId,
        };
        const receipt = await sendAndWait(approve, `Approve ${token.symbol}`, onProgress);
        onProgress({ phase: "working", message: `${token.symbol} approved. Now the purchase…`, approveHash: receipt.transactionHash, chainId });
      }
    }
  }
  const receipt = await sendAndWait(finalTx, "Purchase", onProgress);
  return { orderId, hash: receipt.transactionHash };
}

/** Poll the access endpoint until the indexer has recorded the purchase. */
export async function waitForAccess(
  courseId: number,
  address: string,
  { timeoutMs = 120_000, intervalMs = 1_000, signal }: { timeoutMs?: number; intervalMs?: number; signal?: AbortSignal } = {},
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (signal?.aborted) return false;
    try {
      const access = await fetchAccess(courseId, address);
      if (access.hasAccess) return true;
    } catch {
      /* keep polling through hiccups */
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
  return false;
}

// ------------------------------------------------------------------ card

interface StripeCheckoutResponse {
  url: string;
  orderId: string;
  sessionId: string;
}

export const PENDING_CARD_KEY = "tuition.cardCheckout";

export async function startCardCheckout(courseId: number): Promise<void> {
  const res = await api<StripeCheckoutResponse>("/checkout/stripe", { method: "POST", body: { courseId } });
  // The return page finds the order by the session id Stripe puts in success_url; this copy only
  // serves links back without one (and a canceled payment's way back to the course).
  try {
    sessionStorage.setItem(PENDING_CARD_KEY, JSON.stringify({ orderId: res.orderId, sessionId: res.sessionId, courseId }));
  } catch {
    /* private mode: the session id in the return URL is enough */
  }
  window.location.assign(res.url);
}

export function describeError(err: unknown): string {
  return errorMessage(err);
}
