// The signed-in user: SIWE sign-in, the session cookie (HttpOnly, set by the API), sign-out.
import { getAddress, type Address } from "viem";
import { api, ApiError } from "./api";
import { config, isSupportedChain } from "./config";
import { buildSiweMessage } from "./siwe";
import { createStore } from "./store";
import { personalSign, walletStore } from "./wallet";

export interface User {
  address: Address;
  chainId?: number;
  isProvider?: boolean;
  roles?: string[];
  expiresAt?: string;
}

export interface SessionState {
  user: User | null;
  checked: boolean; // GET /auth/me answered at least once
  signingIn: boolean;
}

export const sessionStore = createStore<SessionState>({ user: null, checked: false, signingIn: false });

export const SIWE_STATEMENT = "Sign in to Tuition to buy courses, learn and collect your certificates.";

function toUser(raw: Record<string, unknown>): User {
  const inner = (raw.user as Record<string, unknown> | undefined) ?? raw;
  return {
    address: getAddress(String(inner.address)),
    chainId: inner.chainId as number | undefined,
    isProvider: Boolean(inner.isProvider ?? inner.is_provider),
    roles: (inner.roles as string[] | undefined) ?? [],
    expiresAt: (raw.expiresAt ?? inner.expiresAt) as string | undefined,
  };
}

export async function refreshSession(): Promise<User | null> {
  try {
    const me = await api<Record<string, unknown>>("/auth/me");
    const user = toUser(me);
    sessionStore.set({ user, checked: true });
    return user;
  } catch (err) {
    if (err instanceof ApiError && (err.status === 401 || err.status === 403)) {
      sessionStore.set({ user: null, checked: true });
      return null;
    }
    sessionStore.set({ checked: true });
    throw err;
  }
}

interface NonceResponse {
  nonce: string;
  domain: string;
  uri: string;
  chainId: number;
  issuedAt: string;
  expiresAt?: string;
  expirationTime?: string;
  statement?: string;
}

export async function signIn(): Promise<User> {
  const { address, chainId: walletChain } = walletStore.get();
  if (!address) throw new Error("Connect a wallet first.");
  sessionStore.set({ signingIn: true });
  try {
    const n = await api<NonceResponse>("/auth/nonce");
    const message = buildSiweMessage({
      domain: n.domain,
      address,
      statement: n.statement ?? SIWE_STATEMENT,
      uri: n.uri,
      version: "1",
      // The chain the wallet is on when Tuition runs there (the API accepts each of its chains).
      chainId: isSupportedChain(walletChain) ? Number(walletChain) : Number(n.chainId ?? config().chainId),
      nonce: n.nonce,
      issuedAt: n.issuedAt,
      expirationTime: n.expiresAt ?? n.expirationTime,
    });
    const signature = await personalSign(message);
    await api("/auth/verify", { method: "POST", body: { message, signature } });
    const user = await refreshSession();
    if (!user) throw new Error("Signed in, but the session was not kept. Are cookies blocked?");
    return user;
  } finally {
    sessionStore.set({ signingIn: false });
  }
}

export async function signOut(): Promise<void> {
  try {
    await api("/auth/logout", { method: "POST", body: {} });
  } finally {
    sessionStore.set({ user: null, checked: true });
  }
}

/** The session's address differs from the connected wallet's. */
export function sessionMismatch(): boolean {
  const { user } = sessionStore.get();
  const { address } = walletStore.get();
  return Boolean(user && address && user.address.toLowerCase() !== address.toLowerCase());
}
