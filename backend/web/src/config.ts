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

export interface AppConfig {
  chainId: number;
  chainName: string;
  rpcUrl: string;
  publicUrl: string;
  nativeCurrency: { name: string; symbol: string; decimals: number };
  blockExplorerUrl: string | null;
  contracts: { market: Address | null; certificate: Address | null };
  deployBlock: bigint; // where the contracts' events start
  tokens: TokenInfo[];
  walletConnectProjectId: string | null;
  stripeEnabled: boolean;
}

interface RawConfig {
  chainId?: number;
  deployBlock?: number;
  chainName?: string;
  rpcUrl?: string;
  publicUrl?: string;
  nativeCurrency?: { name: string; symbol: string; decimals: number };
  blockExplorerUrl?: string | null;
  contracts?: Record<string, string | { address: string } | null>;
  tokens?: Array<{ address: string; symbol: string; decimals: number; name?: string; native?: boolean }>;
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

export function normalizeConfig(raw: RawConfig): AppConfig {
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
  return {
    chainId: Number(raw.chainId ?? 31337),
    chainName: raw.chainName ?? `Chain ${raw.chainId ?? 31337}`,
    rpcUrl: raw.rpcUrl ?? "http://127.0.0.1:8545",
    publicUrl: (raw.publicUrl ?? window.location.origin).replace(/\/$/, ""),
    nativeCurrency: native,
    blockExplorerUrl: raw.blockExplorerUrl ?? null,
    contracts: {
      market: addressOf(contracts.market ?? contracts.CourseMarket),
      certificate: addressOf(contracts.certificate ?? contracts.CourseCertificate),
    },
    deployBlock: BigInt(raw.deployBlock ?? 0),
    tokens,
    walletConnectProjectId: raw.walletConnectProjectId || null,
    stripeEnabled: raw.stripeEnabled ?? true,
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

export function tokenByAddress(address: string | null | undefined): TokenInfo | undefined {
  if (!loaded || !address) return undefined;
  const lower = address.toLowerCase();
  return loaded.tokens.find((t) => t.address.toLowerCase() === lower);
}

export function tokenBySymbol(symbol: string | null | undefined): TokenInfo | undefined {
  if (!loaded || !symbol) return undefined;
  return loaded.tokens.find((t) => t.symbol.toLowerCase() === symbol.toLowerCase());
}

export function explorerTxUrl(hash: string): string | null {
  const base = loaded?.blockExplorerUrl;
  return base ? `${base.replace(/\/$/, "")}/tx/${hash}` : null;
}
