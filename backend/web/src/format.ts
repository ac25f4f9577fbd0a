// Money and date formatting. Token amounts are integers in base units (bigint), formatted with
// viem's formatUnits: no floating point anywhere near money.
import { formatUnits, parseUnits } from "viem";

/** Group the integer part with thin separators and trim the fraction to `maxFraction` digits. */
export function formatTokenAmount(amount: bigint | string | number, decimals: number, maxFraction = 6): string {
  const value = BigInt(amount);
  const text = formatUnits(value < 0n ? -value : value, decimals);
  let [whole, fraction = ""] = text.split(".");
  if (fraction.length > maxFraction) {
    const trimmed = fraction.slice(0, maxFraction).replace(/0+$/, "");
    // Never show a non-zero amount as zero.
    fraction = trimmed || (whole === "0" ? fraction.replace(/0+$/, "") : "");
  }
  whole = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return (value < 0n ? "-" : "") + whole + (fraction ? `.${fraction}` : "");
}

export function formatToken(amount: bigint | string | number, decimals: number, symbol: string): string {
  return `${formatTokenAmount(amount, decimals)} ${symbol}`;
}

/** Parse what a person typed ("12.5") into base units; throws on bad input. */
export function parseTokenInput(text: string, decimals: number): bigint {
  const cleaned = text.trim().replace(/,/g, "");
  if (!/^\d+(\.\d+)?$/.test(cleaned)) throw new Error("Enter a number such as 12.5");
  const [, fraction = ""] = cleaned.split(".");
  if (fraction.length > decimals) throw new Error(`At most ${decimals} decimals`);
  return parseUnits(cleaned, decimals);
}

function currencyDigits(currency: string): number {
  try {
    return new Intl.NumberFormat("en", { style: "currency", currency: currency.toUpperCase() }).resolvedOptions()
      .maximumFractionDigits ?? 2;
  } catch {
    return 2;
  }
}

/** Fiat minor units (cents) to "$49.00", through a decimal string, not a float. */
export function formatFiat(minor: number | string | bigint, currency: string): string {
  const digits = currencyDigits(currency);
  const text = formatUnits(BigInt(minor), digits);
  const code = currency.toUpperCase();
  try {
    return new Intl.NumberFormat("en", {
      style: "currency",
      currency: code,
      minimumFractionDigits: digits,
    }).format(text as unknown as number); // Intl formats decimal strings exactly
  } catch {
    return `${text} ${code}`;
  }
}

export function parseFiatInput(text: string, currency: string): bigint {
  const digits = currencyDigits(currency);
  return parseTokenInput(text, digits);
}

export function fiatDigits(currency: string): number {
  return currencyDigits(currency);
}

export function shortAddress(address: string | null | undefined): string {
  if (!address) return "";
  return `${address.slice(0, 6)}…${address.slice(-4)}`;
}

export function shortHash(hash: string): string {
  return `${hash.slice(0, 10)}…${hash.slice(-8)}`;
}

export function formatDate(value: string | number | Date | null | undefined, withTime = false): string {
  if (value === null || value === undefined || value === "") return "—";
  const date =
    value instanceof Date ? value : typeof value === "number" ? new Date(value * 1000) : new Date(value);
  if (Number.isNaN(date.getTime())) return String(value);
  return date.toLocaleString("en-GB", {
    year: "numeric",
    month: "short",
    day: "numeric",
    ...(withTime ? { hour: "2-digit", minute: "2-digit", timeZone: "UTC", timeZoneName: "short" } : { timeZone: "UTC" }),
  });
}
