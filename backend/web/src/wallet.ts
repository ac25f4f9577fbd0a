// Wallet connection: injected wallets found with EIP-6963 (fallback: window.ethereum), and
// WalletConnect (only when the server configured a project id). One connected EIP-1193 provider
// at a time; the chosen wallet is remembered so a reload reconnects without a prompt.
import {
  createWalletClient,
  custom,
  getAddress,
  numberToHex,
  stringToHex,
  type Address,
  type Hash,
  type Hex,
  type TypedDataDefinition,
} from "viem";
import { rpcErrorCode } from "./api";
import { chainLabel, config, isSupportedChain, networkOf, networks } from "./config";
import { createStore } from "./store";

export interface Eip1193Provider {
  request(args: { method: string; params?: unknown[] | object }): Promise<unknown>;
  on?(event: string, listener: (...args: any[]) => void): unknown;
  removeListener?(event: string, listener: (...args: any[]) => void): unknown;
}

export interface WalletOption {
  id: string; // EIP-6963 rdns (or uuid), "injected" for window.ethereum, "walletconnect"
  name: string;
  icon: string | null;
  provider: Eip1193Provider | null; // null for WalletConnect until it is initialised
}

export interface WalletState {
  options: WalletOption[];
  walletId: string | null;
  walletName: string | null;
  provider: Eip1193Provider | null;
  address: Address | null;
  chainId: number | null;
  status: "disconnected" | "connecting" | "connected";
  error: string | null;
  walletConnectUri: string | null;
  switching: boolean;
}

export const walletStore = createStore<WalletState>({
  options: [],
  walletId: null,
  walletName: null,
  provider: null,
  address: null,
  chainId: null,
  status: "disconnected",
  error: null,
  walletConnectUri: null,
  switching: false,
});

const REMEMBER_KEY = "tuition.wallet";

export class WrongNetworkError extends Error {
  constructor(expected: number, actual: number | null) {
    super(`Your wallet is on ${chainLabel(actual)}; switch it to ${chainLabel(expected)} (chain ${expected}) first.`);
    this.name = "WrongNetworkError";
  }
}

export class NotConnectedError extends Error {
  constructor() {
    super("Connect a wallet first.");
    this.name = "NotConnectedError";
  }
}

// ------------------------------------------------------------------ discovery (EIP-6963)

interface Eip6963Detail {
  info: { uuid: string; name: string; icon: string; rdns: string };
  provider: Eip1193Provider;
}

function addOption(option: WalletOption): void {
  walletStore.set((s) => {
    const others = s.options.filter((o) => o.id !== option.id);
    return { options: [...others.filter((o) => o.id !== "walletconnect"), option, ...others.filter((o) => o.id === "walletconnect")] };
  });
}

let discoveryStarted = false;

export function startDiscovery(): void {
  if (discoveryStarted) return;
  discoveryStarted = true;
  window.addEventListener("eip6963:announceProvider", (event: Event) => {
    const detail = (event as CustomEvent<Eip6963Detail>).detail;
    if (!detail?.info || !detail.provider) return;
    const icon = /^data:image\//.test(detail.info.icon) ? detail.info.icon : null;
    addOption({ id: detail.info.rdns || detail.info.uuid, name: detail.info.name, icon, provider: detail.provider });
  });
  window.dispatchEvent(new Event("eip6963:requestProvider"));
}

/** Options to show: EIP-6963 wallets, else the legacy window.ethereum, plus WalletConnect. */
export function walletOptions(): WalletOption[] {
  const { options } = walletStore.get();
  const injected = options.filter((o) => o.id !== "walletconnect");
  const result = [...injected];
  const legacy = (window as unknown as { ethereum?: Eip1193Provider }).ethereum;
  if (result.length === 0 && legacy) {
    result.push({ id: "injected", name: "Browser wallet", icon: null, provider: legacy });
  }
  if (config().walletConnectProjectId) {
    result.push({ id: "walletconnect", name: "WalletConnect", icon: null, provider: null });
  }
  return result;
}

// ------------------------------------------------------------------ connection

let detach: (() => void) | null = null;

function parseChainId(value: unknown): number | null {
  if (typeof value === "number") return value;
  if (typeof value === "string") return value.startsWith("0x") ? parseInt(value, 16) : parseInt(value, 10);
  return null;
}

function firstAccount(accounts: unknown): Address | null {
  if (!Array.isArray(accounts) || accounts.length === 0) return null;
  try {
    return getAddress(String(accounts[0]));
  } catch {
    return null;
  }
}

function attach(option: WalletOption, provider: Eip1193Provider): void {
  detach?.();
  const onAccounts = (accounts: unknown) => {
    const address = firstAccount(accounts);
    if (!address) {
      disconnect();
      return;
    }
    walletStore.set({ address });
  };
  const onChain = (chainId: unknown) => walletStore.set({ chainId: parseChainId(chainId) });
  const onDisconnect = (error?: { code?: number }) => {
    // 1013: the wallet is reconnecting to its node; not a user disconnect.
    if (error?.code === 1013) return;
    if (option.id === "walletconnect") disconnect();
  };
  provider.on?.("accountsChanged", onAccounts);
  provider.on?.("chainChanged", onChain);
  provider.on?.("disconnect", onDisconnect);
  detach = () => {
    provider.removeListener?.("accountsChanged", onAccounts);
    provider.removeListener?.("chainChanged", onChain);
    provider.removeListener?.("disconnect", onDisconnect);
    detach = null;
  };
}

async function finishConnect(option: WalletOption, provider: Eip1193Provider, accounts: unknown): Promise<void> {
  const address = firstAccount(accounts);
  if (!address) throw new Error("The wallet shared no account.");
  const chainId = parseChainId(await provider.request({ method: "eth_chainId" }));
  attach(option, provider);
  walletStore.set({
    walletId: option.id,
    walletName: option.name,
    provider,
    address,
    chainId,
    status: "connected",
    error: null,
    walletConnectUri: null,
  });
  try {
    localStorage.setItem(REMEMBER_KEY, option.id);
  } catch {
    /* private mode */
  }
}

export async function connect(option: WalletOption): Promise<void> {
  walletStore.set({ status: "connecting", error: null, walletConnectUri: null });
  try {
    if (option.id === "walletconnect") {
      const provider = await walletConnectProvider();
      await provider.connect();
      await finishConnect(option, provider, provider.accounts);
      return;
    }
    if (!option.provider) throw new Error("That wallet is not available.");
    const accounts = await option.provider.request({ method: "eth_requestAccounts" });
    await finishConnect(option, option.provider, accounts);
  } catch (err) {
    walletStore.set({ status: "disconnected", walletConnectUri: null });
    throw err;
  }
}

export function disconnect(): void {
  const { walletId, provider } = walletStore.get();
  detach?.();
  if (walletId === "walletconnect" && provider) {
    (provider as WalletConnectLike).disconnect?.().catch(() => undefined);
  }
  walletStore.set({
    walletId: null,
    walletName: null,
    provider: null,
    address: null,
    chainId: null,
    status: "disconnected",
    walletConnectUri: null,
  });
  try {
    localStorage.removeItem(REMEMBER_KEY);
  } catch {
    /* private mode */
  }
}

/** Reconnect silently (eth_accounts, no prompt) to the wallet chosen last time. */
export async function restoreConnection(): Promise<void> {
  let remembered: string | null = null;
  try {
    remembered = localStorage.getItem(REMEMBER_KEY);
  } catch {
    return;
  }
  if (!remembered) return;
  // Give EIP-6963 wallets a moment to announce themselves.
  for (let i = 0; i < 10 && !walletOptions().some((o) => o.id === remembered); i++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const option = walletOptions().find((o) => o.id === remembered);
  if (!option) return;
  try {
    if (option.id === "walletconnect") {
      const provider = await walletConnectProvider();
      if (provider.session && provider.accounts.length) await finishConnect(option, provider, provider.accounts);
      return;
    }
    if (!option.provider) return;
    const accounts = await option.provider.request({ method: "eth_accounts" });
    if (firstAccount(accounts)) await finishConnect(option, option.provider, accounts);
  } catch {
    /* stay disconnected */
  }
}

// ------------------------------------------------------------------ WalletConnect

interface WalletConnectLike extends Eip1193Provider {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  accounts: string[];
  session?: unknown;
  on(event: string, listener: (...args: any[]) => void): unknown;
}

let wcProvider: Promise<WalletConnectLike> | null = null;

function walletConnectProvider(): Promise<WalletConnectLike> {
  if (!wcProvider) {
    const cfg = config();
    const projectId = cfg.walletConnectProjectId;
    if (!projectId) return Promise.reject(new Error("WalletConnect is not configured on this server."));
    wcProvider = import("@walletconnect/ethereum-provider").then(async ({ EthereumProvider }) => {
      const provider = await EthereumProvider.init({
        projectId,
        optionalChains: networks().map((n) => n.chainId) as [number, ...number[]],
        rpcMap: Object.fromEntries(networks().map((n) => [n.chainId, n.rpcUrl])),
        showQrModal: false, // we draw our own QR code from display_uri
        metadata: {
          name: "Tuition",
          description: "Courses paid with crypto or card, certificates on-chain.",
          url: window.location.origin,
          icons: [`${window.location.origin}/favicon.svg`],
        },
      });
      provider.on("display_uri", (uri: string) => walletStore.set({ walletConnectUri: uri }));
      return provider as unknown as WalletConnectLike;
    });
    wcProvider.catch(() => {
      wcProvider = null;
    });
  }
  return wcProvider;
}

// ------------------------------------------------------------------ network

/** The wallet is connected to a chain Tuition does not run on. */
export function isWrongNetwork(state: WalletState = walletStore.get()): boolean {
  return state.status === "connected" && !isSupportedChain(state.chainId);
}

/** Ask the wallet to switch to a configured chain (the API's own by default); when the wallet
 * does not know the chain, add it with its RPC, native coin and explorer first. */
export async function switchNetwork(targetChainId: number = config().chainId): Promise<void> {
  const { provider } = walletStore.get();
  if (!provider) throw new NotConnectedError();
  const network = networkOf(targetChainId);
  if (!network) throw new Error(`Tuition does not run on chain ${targetChainId}.`);
  const chainId = numberToHex(network.chainId);
  walletStore.set({ switching: true });
  try {
    try {
      await provider.request({ method: "wallet_switchEthereumChain", params: [{ chainId }] });
    } catch (err) {
      // 4902: unknown chain. Some wallets wrap it in -32603 with data.originalError.code.
      if (rpcErrorCode(err) !== 4902) throw err;
      await provider.request({
        method: "wallet_addEthereumChain",
        params: [
          {
            chainId,
            chainName: network.chainName,
            nativeCurrency: network.nativeCurrency,
            rpcUrls: [network.rpcUrl],
            blockExplorerUrls: network.blockExplorerUrl ? [network.blockExplorerUrl] : undefined,
          },
        ],
      });
      // MetaMask switches after adding; others only add: ask again (a no-op when already there).
      await provider.request({ method: "wallet_switchEthereumChain", params: [{ chainId }] });
    }
    // Wallets emit chainChanged, but not all of them reliably: ask.
    const current = parseChainId(await provider.request({ method: "eth_chainId" }));
    walletStore.set({ chainId: current });
  } finally {
    walletStore.set({ switching: false });
  }
}

/** Make sure the wallet is on `chainId`, asking it to switch (or add the chain) when not. */
export async function ensureChain(chainId: number): Promise<void> {
  if (walletStore.get().chainId !== chainId) await switchNetwork(chainId);
  requireNetwork(chainId);
}

// ------------------------------------------------------------------ signing and sending

function connected(): { provider: Eip1193Provider; address: Address } {
  const { provider, address, status } = walletStore.get();
  if (status !== "connected" || !provider || !address) throw new NotConnectedError();
  return { provider, address };
}

function requireNetwork(expected: number): void {
  const { chainId } = walletStore.get();
  if (chainId !== expected) throw new WrongNetworkError(expected, chainId);
}

/** EIP-191 personal_sign of a UTF-8 message (sent hex-encoded, as the spec recommends). */
export async function personalSign(message: string): Promise<Hex> {
  const { provider, address } = connected();
  return (await provider.request({ method: "personal_sign", params: [stringToHex(message), address] })) as Hex;
}

/** eth_signTypedData_v4 through viem (it adds the EIP712Domain type and serialises), with the
 * wallet on the chain the domain names (the API's own when it names none). */
export async function signTypedData(typedData: TypedDataDefinition): Promise<Hex> {
  const { provider, address } = connected();
  const domainChain = (typedData.domain as { chainId?: number | bigint } | undefined)?.chainId;
  await ensureChain(domainChain === undefined ? config().chainId : Number(domainChain));
  const client = createWalletClient({ account: address, transport: custom(provider) });
  return client.signTypedData(typedData as Parameters<typeof client.signTypedData>[0]);
}

export interface TxRequest {
  to: Address;
  data?: Hex;
  value?: bigint | string | number;
  chainId?: number; // the chain it is built for; the API's own when absent
}

/** Send `tx` on its chain (the API's own when it names none); the wallet is asked to switch
 * there first, so a transaction never goes to another chain than the one it was built for. */
export async function sendTransaction(tx: TxRequest): Promise<Hash> {
  const { provider, address } = connected();
  const chainId = tx.chainId === undefined ? config().chainId : Number(tx.chainId);
  await ensureChain(chainId);
  const value = tx.value === undefined ? 0n : BigInt(tx.value);
  // The chain id lets the wallet refuse it if the user switched away in the meantime.
  const params: Record<string, string> = { from: address, to: getAddress(tx.to), chainId: numberToHex(chainId) };
  if (tx.data && tx.data !== "0x") params.data = tx.data;
  if (value > 0n) params.value = numberToHex(value);
  return (await provider.request({ method: "eth_sendTransaction", params: [params] })) as Hash;
}
