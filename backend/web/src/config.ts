// The public front-end configuration served by GET /api/v1/config.
import { getAddress, type Address } from "viem";
import { api } from "./api";

export const NATIVE: Address = "0x0000000000000000000000000000000000000000";

export interface TokenInfo {
  address: Address;
  symbol: string;
  decimals: number;
  name: string;
  native: boolean;
}

/** One chain the app can use: what a wallet needs to add and switch to it, its contracts and
 * payment tokens. */
export interface NetworkInfo {
  chainId: number;
  network: string;
  chainName: string;
  rpcUrl: string;
  nativeCurrency: { name: string; symbol: string; decimals: number };
  blockExplorerUrl: string | null;
  contracts: { market: Address | null; certificate: Address | null };
  deployBlock: bigint; // where the contracts' events start
  tokens: TokenInfo[];
  deployed: boolean;
}

/** The API's own chain at the top level (the default), every configured chain in `networks`. */
export interface AppConfig extends NetworkInfo {
  publicUrl: string;
  walletConnectProjectId: string | null;
  stripeEnabled: boolean;
  networks: NetworkInfo[];
}

interface RawNetwork {
  chainId?: number;
  network?: string;
  deployBlock?: number;
  chainName?: string;
  rpcUrl?: string;
  publicUrl?: string;
  nativeCurrency?: { name: string; symbol: string; decimals: number };
  blockExplorerUrl?: string | null;
  contracts?: Record<string, string | { address: string } | null>;
  tokens?: Array<{ address: string; symbol: string; decimals: number; name?: string; native?: boolean }>;
  deployed?: boolean;
}

interface RawConfig extends RawNetwork {
  networks?: RawNetwork[];
  walletConnectProjectId?: string | null;
  stripeEnabled?: boolean;
}

let cached: Promise<AppConfig> | null = null;
let loaded: AppConfig | null = null;

function addressOf(value: string | { address: string } | null | undefined): Address | null {
  if (!value) return null;
  const raw = typeof value === "string" ? value : value.address;
  try {
    return getAddress(raw);
  } catch {
    return null;
  }
}

function normalizeNetwork(raw: RawNetwork): NetworkInfo {
  const native = raw.nativeCurrency ?? { name: "Ether", symbol: "ETH", decimals: 18 };
  const contracts = raw.contracts ?? {};
  const tokens: TokenInfo[] = (raw.tokens ?? []).map((t) => ({
    address: getAddress(t.address),
    symbol: t.symbol,
    decimals: Number(t.decimals),
    name: t.name ?? t.symbol,
    native: t.native ?? /^0x0{40}$/i.test(t.address),
  }));
  if (!tokens.some((t) => t.native)) {
    tokens.unshift({ address: NATIVE, symbol: native.symbol, decimals: native.decimals, name: native.name, native: true });
  }
  const chainId = Number(raw.chainId ?? 31337);
  return {
    chainId,
    network: raw.network ?? String(chainId),
    chainName: raw.chainName ?? `Chain ${chainId}`,
    rpcUrl: raw.rpcUrl ?? "http://127.0.0.1:8545",
    nativeCurrency: native,
    blockExplorerUrl: raw.blockExplorerUrl ?? null,
    contracts: {
      market: addressOf(contracts.market ?? contracts.CourseMarket),
      certificate: addressOf(contracts.certificate ?? contracts.CourseCertificate),
    },
    deployBlock: BigInt(raw.deployBlock ?? 0),
    tokens,
    deployed: raw.deployed ?? true,
  };
}

export function normalizeConfig(raw: RawConfig): AppConfig {
  const own = normalizeNetwork(raw);
  const others = (raw.networks ?? []).map(normalizeNetwork).filter((n) => n.chainId !== own.chainId);
  return {
    ...own,
    publicUrl: (raw.publicUrl ?? window.location.origin).replace(/\/$/, ""),
    walletConnectProjectId: raw.walletConnectProjectId || null,
    stripeEnabled: raw.stripeEnabled ?? true,
    networks: [own, ...others],
  };
}

export function loadConfig(): Promise<AppConfig> {
  if (!cached) {
    cached = api<RawConfig>("/config").then((raw) => {
      loaded = normalizeConfig(raw);
      return loaded;
    });
    cached.catch(() => {
      cached = null;
    });
  }
  return cached;
}

/** The configuration; only valid after loadConfig() resolved (the app waits for it). */
export function config(): AppConfig {
  if (!loaded) throw new Error("configuration not loaded yet");
  return loaded;
}

/** Every chain the app can use, the API's own first. */
export function networks(): NetworkInfo[] {
  return loaded?.networks ?? [];
}

/** The configured chain with this id (undefined for a chain Tuition does not run on). */
export function networkOf(chainId: number | null | undefined): NetworkInfo | undefined {
  if (chainId == null) return undefined;
  return networks().find((n) => n.chainId === Number(chainId));
}

export function isSupportedChain(chainId: number | null | undefined): boolean {
  return networkOf(chainId) !== undefined;
}

/** The chain `chainId` names, or the API's own one when none is named. */
function networkOrDefault(chainId?: number | null): NetworkInfo | undefined {
  return chainId == null ? loaded ?? undefined : networkOf(chainId);
}

/** A payment token of one chain (the API's own when `chainId` is not given). */
export function tokenByAddress(address: string | null | undefined, chainId?: number | null): TokenInfo | undefined {
  const network = networkOrDefault(chainId);
  if (!network || !address) return undefined;
  const lower = address.toLowerCase();
  return network.tokens.find((t) => t.address.toLowerCase() === lower);
}

export function tokenBySymbol(symbol: string | null | undefined, chainId?: number | null): TokenInfo | undefined {
  const network = networkOrDefault(chainId);
  if (!network || !symbol) return undefined;
  return network.tokens.find((t) => t.symbol.toLowerCase() === symbol.toLowerCase());
}

/** The block explorer's page of a transaction on a chain (null when the chain has none). */
export function explorerTxUrl(hash: string, chainId?: number | null): string | null {
  const base = networkOrDefault(chainId)?.blockExplorerUrl;
  return base ? `${base.replace(/\/$/, "")}/tx/${hash}` : null;
}

/** "Anvil 31338" for a configured chain, "chain 5" otherwise. */
export function chainLabel(chainId: number | null | undefined): string {
  return networkOf(chainId)?.chainName ?? `chain ${chainId ?? "?"}`;
}
