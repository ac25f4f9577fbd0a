// Certificates: read from the chain (never from our API), record-hash check of an uploaded
// certificate JSON, QR code and PDF.
import {
  BaseError,
  ContractFunctionRevertedError,
  getAddress,
  keccak256,
  stringToBytes,
  type Address,
  type Hex,
} from "viem";
import { certificateAbi, marketAbi, publicClient } from "./chain";
import { config, type NetworkInfo } from "./config";

export const REVOKE_REASONS: Record<number, string> = {
  1: "issued in error",
  2: "academic misconduct",
  3: "course withdrawn",
  4: "learner request",
  5: "payment refunded",
  6: "payment disputed",
  7: "corrected",
};

export interface OnchainCertificate {
  contract: Address;
  tokenId: bigint;
  holder: Address;
  courseId: bigint;
  courseTitle: string | null;
  issuer: Address;
  issuerVerified: boolean; // the platform vouches for the provider's public record
  issuedAt: number;
  recordHash: Hex;
  revoked: boolean;
  revokedAt: number;
  revokeReason: number;
  removed: boolean; // burned by its holder
  replacedBy: bigint | null; // the certificate that corrects this one
  image: string | null; // data: URL of the on-chain SVG
  metadata: Record<string, unknown> | null;
}

export class CertificateNotFound extends Error {
  constructor(tokenId: bigint) {
    super(`No certificate #${tokenId} was ever issued by this contract.`);
    this.name = "CertificateNotFound";
  }
}

function decodeDataJson(uri: string): Record<string, unknown> | null {
  const base64 = "data:application/json;base64,";
  try {
    if (uri.startsWith(base64)) {
      const bin = atob(uri.slice(base64.length));
      const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
      return JSON.parse(new TextDecoder().decode(bytes));
    }
    const plain = uri.match(/^data:application\/json(?:;charset=utf-8)?,(.*)$/s);
    if (plain) return JSON.parse(decodeURIComponent(plain[1]));
  } catch {
    /* fall through */
  }
  return null;
}

/** Everything the verify page shows, straight from the certificate contract. */
export async function readCertificate(contract: Address, tokenId: bigint, network?: NetworkInfo): Promise<OnchainCertificate> {
  const pc = publicClient(network);
  let facts;
  try {
    facts = await pc.readContract({ address: contract, abi: certificateAbi, functionName: "verify", args: [tokenId] });
  } catch (err) {
    if (err instanceof BaseError) {
      const revert = err.walk((e) => e instanceof ContractFunctionRevertedError);
      if (revert instanceof ContractFunctionRevertedError && revert.data?.errorName === "UnknownCertificate") {
        throw new CertificateNotFound(tokenId);
      }
      const code = await pc.getCode({ address: contract }).catch(() => undefined);
      if (!code || code === "0x") throw new Error(`There is no contract at ${contract} on this chain.`);
    }
    throw err;
  }
  const [uri, marketAddress] = await Promise.all([
    pc.readContract({ address: contract, abi: certificateAbi, functionName: "tokenURI", args: [tokenId] }).catch(() => null),
    pc.readContract({ address: contract, abi: certificateAbi, functionName: "market" }).catch(() => null),
  ]);
  let courseTitle: string | null = null;
  if (marketAddress) {
    courseTitle = await pc
      .readContract({ address: marketAddress, abi: marketAbi, functionName: "courseTitle", args: [facts.courseId] })
      .catch(() => null);
  }
  const metadata = uri ? decodeDataJson(uri) : null;
  const image = typeof metadata?.image === "string" && metadata.image.startsWith("data:image/") ? metadata.image : null;
  return {
    contract: getAddress(contract),
    tokenId,
    holder: facts.holder,
    courseId: facts.courseId,
    courseTitle,
    issuer: facts.issuer,
    issuerVerified: facts.issuerVerified,
    issuedAt: Number(facts.issuedAt),
    recordHash: facts.recordHash,
    revoked: facts.revoked,
    revokedAt: Number(facts.revokedAt),
    revokeReason: Number(facts.revokeReason),
    removed: facts.removed,
    replacedBy: facts.replacedBy === 0n ? null : facts.replacedBy,
    image,
    metadata,
  };
}

// ------------------------------------------------------------------ record hash

/**
 * The canonical form of a certificate record, as backend/certificates computes it: object keys
 * sorted (by code point), no whitespace, UTF-8, strings escaped as JSON.stringify does (non-ASCII
 * kept as is), integers only. Equal to Python's
 * json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False).
 */
export function canonicalJson(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "boolean") return value ? "true" : "false";
  if (typeof value === "number") {
    if (!Number.isInteger(value) || !Number.isSafeInteger(value)) {
      throw new Error("Certificate records hold only integers, strings, booleans, lists and objects.");
    }
    return String(value);
  }
  if (typeof value === "string") return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (typeof value === "object") {
    const obj = value as Record<string, unknown>;
    const keys = Object.keys(obj).sort(comparePython);
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(",")}}`;
  }
  throw new Error(`Cannot canonicalise a ${typeof value}`);
}

/** Python sorts str keys by code point; JS's default sort compares UTF-16 units. */
function comparePython(a: string, b: string): number {
  const ca = Array.from(a);
  const cb = Array.from(b);
  for (let i = 0; i < Math.min(ca.length, cb.length); i++) {
    const d = (ca[i].codePointAt(0) ?? 0) - (cb[i].codePointAt(0) ?? 0);
    if (d !== 0) return d;
  }
  return ca.length - cb.length;
}

/** First 28 bytes of keccak256(canonical JSON). */
export function recordHash(record: unknown): Hex {
  const digest = keccak256(stringToBytes(canonicalJson(record)));
  return digest.slice(0, 2 + 56) as Hex;
}

/** A downloaded certificate file may be the record itself or {record: {...}, ...}. */
export function recordFromFile(parsed: unknown): unknown {
  if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) {
    const obj = parsed as Record<string, unknown>;
    if (obj.record && typeof obj.record === "object") return obj.record;
  }
  return parsed;
}

// ------------------------------------------------------------------ links, QR, PDF

/** The app's path to a certificate's verification, naming its chain when it is not the API's
 * own (the same token id may exist on several chains). */
export function verifyPath(tokenId: bigint | string, chainId?: number | null): string {
  const path = `/verify/${tokenId.toString()}`;
  return chainId != null && chainId !== config().chainId ? `${path}?chain=${chainId}` : path;
}

/** The public link to a certificate's verification; `chainId` when it is not the API's own
 * chain (the same token id may exist on several chains). */
export function verifyUrl(tokenId: bigint | string, contract?: string | null, chainId?: number | null): string {
  const base = `${window.location.origin}/verify/${tokenId.toString()}`;
  const query = new URLSearchParams();
  if (contract) query.set("contract", contract);
  if (chainId != null && chainId !== config().chainId) query.set("chain", String(chainId));
  const rest = query.toString();
  return rest ? `${base}?${rest}` : base;
}

/** Parse "a certificate link" into its token id, contract and chain, if it is one of ours. */
export function parseCertificateLink(text: string): { tokenId: string; contract: string | null; chain: string | null } | null {
  const trimmed = text.trim();
  try {
    const url = new URL(trimmed);
    const m = url.pathname.match(/\/verify\/(\d+)\/?$/);
    if (m) return { tokenId: m[1], contract: url.searchParams.get("contract"), chain: url.searchParams.get("chain") };
  } catch {
    /* not a URL */
  }
  if (/^\d+$/.test(trimmed)) return { tokenId: trimmed, contract: null, chain: null };
  if (/^0x[0-9a-fA-F]+$/.test(trimmed)) return { tokenId: BigInt(trimmed).toString(), contract: null, chain: null };
  return null;
}

export async function qrDataUrl(text: string): Promise<string> {
  const QR = await import("qrcode");
  return QR.toDataURL(text, { errorCorrectionLevel: "M", margin: 1, width: 240 });
}

export async function qrSvg(text: string): Promise<string> {
  const QR = await import("qrcode");
  return QR.toString(text, { type: "svg", errorCorrectionLevel: "M", margin: 1 });
}

/** Draw an SVG data URL onto a canvas to embed it in the PDF as PNG. */
async function svgToPng(svgDataUrl: string, width: number, height: number): Promise<string | null> {
  return new Promise((resolve) => {
    const img = new Image();
    img.onload = () => {
      try {
        const canvas = document.createElement("canvas");
        canvas.width = width;
        canvas.height = height;
        const ctx = canvas.getContext("2d");
        if (!ctx) return resolve(null);
        ctx.fillStyle = "#ffffff";
        ctx.fillRect(0, 0, width, height);
        ctx.drawImage(img, 0, 0, width, height);
        resolve(canvas.toDataURL("image/png"));
      } catch {
        resolve(null);
      }
    };
    img.onerror = () => resolve(null);
    img.src = svgDataUrl;
  });
}

export async function certificatePdf(cert: OnchainCertificate, chainName: string, url: string): Promise<Blob> {
  const { jsPDF } = await import("jspdf");
  const doc = new jsPDF({ orientation: "landscape", unit: "mm", format: "a4" });
  const width = doc.internal.pageSize.getWidth();
  const height = doc.internal.pageSize.getHeight();
  const side = 44; // right column: on-chain image and QR code
  const textWidth = width - 40 - side - 10;

  doc.setDrawColor(29, 53, 87);
  doc.setLineWidth(1.2);
  doc.rect(8, 8, width - 16, height - 16);
  doc.setFont("helvetica", "bold");
  doc.setFontSize(30);
  doc.setTextColor(29, 53, 87);
  doc.text("Certificate of Completion", width / 2, 32, { align: "center" });
  doc.setFont("helvetica", "normal");
  doc.setFontSize(13);
  doc.setTextColor(40, 40, 40);
  doc.text("This certifies that the holder of the Ethereum account", width / 2, 46, { align: "center" });
  doc.setFont("courier", "bold");
  doc.setFontSize(14);
  doc.text(cert.holder, width / 2, 56, { align: "center" });
  doc.setFont("helvetica", "normal");
  doc.setFontSize(13);
  doc.text("completed the course", width / 2, 68, { align: "center" });
  doc.setFont("helvetica", "bold");
  doc.setFontSize(20);
  const title = cert.courseTitle ?? `Course #${cert.courseId}`;
  doc.text(doc.splitTextToSize(title, width - 60), width / 2, 80, { align: "center" });

  const issued = new Date(cert.issuedAt * 1000).toISOString().slice(0, 10);
  const facts: Array<[string, string]> = [
    ["Issued", `${issued} by the course provider ${cert.issuer}`],
    ["Status", cert.revoked
      ? `REVOKED on ${new Date(cert.revokedAt * 1000).toISOString().slice(0, 10)} (${REVOKE_REASONS[cert.revokeReason] ?? `reason ${cert.revokeReason}`})`
      : "valid when downloaded; soulbound (cannot be transferred)"],
    ["Contract", `${cert.contract} on ${chainName}`],
    ["Token id", cert.tokenId.toString()],
    ["Record hash", cert.recordHash],
  ];
  let y = 104;
  doc.setFontSize(9.5);
  for (const [label, value] of facts) {
    doc.setFont("helvetica", "bold");
    doc.setTextColor(29, 53, 87);
    doc.text(label, 20, y);
    doc.setFont("helvetica", "normal");
    doc.setTextColor(40, 40, 40);
    const lines = doc.splitTextToSize(value, textWidth - 28);
    doc.text(lines, 48, y);
    y += 5 * lines.length + 2;
  }
  y += 4;
  doc.setFont("helvetica", "bold");
  doc.setTextColor(29, 53, 87);
  doc.text("Verify it yourself: scan the code or open", 20, y);
  doc.setFont("helvetica", "normal");
  const urlLines: string[] = doc.splitTextToSize(url, textWidth);
  urlLines.forEach((line, i) => doc.textWithLink(line, 20, y + 6 + i * 5, { url }));

  const qr = await qrDataUrl(url);
  doc.addImage(qr, "PNG", width - 20 - side, height - 22 - side, side, side);
  if (cert.image) {
    const png = await svgToPng(cert.image, 600, 600);
    if (png) doc.addImage(png, "PNG", width - 20 - side, 92, side, side);
  }
  doc.setProperties({ title: `Tuition certificate ${cert.tokenId}`, subject: title, creator: "Tuition" });
  return doc.output("blob");
}
