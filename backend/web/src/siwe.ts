// EIP-4361 (Sign-In with Ethereum) message, in the exact field order the spec gives. The
// server's values (domain, uri, nonce, issuedAt, expiresAt) are used verbatim so the message the
// server re-parses is byte-for-byte the one it expects.
import { getAddress } from "viem";

export interface SiweFields {
  domain: string;
  address: string;
  statement?: string;
  uri: string;
  version?: "1";
  chainId: number;
  nonce: string;
  issuedAt: string;
  expirationTime?: string;
  notBefore?: string;
  requestId?: string;
  resources?: string[];
}

export function buildSiweMessage(f: SiweFields): string {
  if (f.statement && f.statement.includes("\n")) throw new Error("SIWE statement must be one line");
  const lines = [
    `${f.domain} wants you to sign in with your Ethereum account:`,
    getAddress(f.address), // EIP-55 checksum, as the spec requires
    "",
  ];
  if (f.statement) lines.push(f.statement, "");
  lines.push(
    `URI: ${f.uri}`,
    `Version: ${f.version ?? "1"}`,
    `Chain ID: ${f.chainId}`,
    `Nonce: ${f.nonce}`,
    `Issued At: ${f.issuedAt}`,
  );
  if (f.expirationTime) lines.push(`Expiration Time: ${f.expirationTime}`);
  if (f.notBefore) lines.push(`Not Before: ${f.notBefore}`);
  if (f.requestId) lines.push(`Request ID: ${f.requestId}`);
  if (f.resources?.length) {
    lines.push("Resources:");
    for (const r of f.resources) lines.push(`- ${r}`);
  }
  return lines.join("\n");
}
