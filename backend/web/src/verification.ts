// The verifier's step report, read from the chain by this page (viem), with the same five steps
// and the same rules as backend/verification/service.py (`tuition verify` and the public API);
// a browser test compares the three. Only the domain link comes from the API: the provider's
// website is fetched by Tuition's server (browsers cannot fetch arbitrary sites).
import { getAddress, type Address } from "viem";
import { api } from "./api";
import { CertificateNotFound, readCertificate, REVOKE_REASONS, type OnchainCertificate } from "./certificate";
import { certificateAbi, marketAbi, publicClient } from "./chain";
import { config, networks, type NetworkInfo } from "./config";

export type StepStatus = "passed" | "failed" | "not_checked";
export type StepName = "exists" | "status" | "issuer" | "integrity" | "holder";
export type Verdict =
  | "not_found"
  | "unknown_contract"
  | "revoked"
  | "replaced"
  | "removed"
  | "document_mismatch"
  | "unverified_issuer"
  | "valid";

export interface Step {
  name: StepName;
  status: StepStatus;
  detail: string;
  facts: Record<string, string | number | boolean | null>;
}

export interface Report {
  chainId: number;
  /** The chain the certificate was looked up on (where it was found, when it was). */
  network: NetworkInfo;
  /** Every chain searched, in order (one when a chain was named). */
  searched: number[];
  contract: Address;
  tokenId: bigint;
  steps: Step[];
  verdict: Verdict;
  cert: OnchainCertificate | null;
}

export const STEP_LABELS: Record<StepName, string> = {
  exists: "Exists on-chain",
  status: "Status",
  issuer: "Issuer",
  integrity: "Document",
  holder: "Holder",
};

export const VERDICT_LABELS: Record<Verdict, string> = {
  valid: "Valid",
  unverified_issuer: "Unverified issuer",
  document_mismatch: "Document does not match",
  revoked: "Revoked",
  replaced: "Replaced by a correction",
  removed: "Removed",
  not_found: "Not found",
  unknown_contract: "Not a Tuition certificate",
};

const REST: StepName[] = ["status", "issuer", "integrity", "holder"];

function iso(seconds: number): string | null {
  return seconds ? new Date(seconds * 1000).toISOString() : null;
}

/** The verdict of a list of steps (most serious first), as the backend decides it. */
export function verdictOf(steps: Step[]): Verdict {
  const by = Object.fromEntries(steps.map((s) => [s.name, s])) as Record<StepName, Step>;
  if (by.exists.status !== "passed") {
    return by.exists.facts.hasCode && !by.exists.facts.knownContract ? "unknown_contract" : "not_found";
  }
  const state = by.status.facts.state;
  if (state !== "valid") return state === "revoked" ? "revoked" : state === "replaced" ? "replaced" : "removed";
  if (by.integrity.status === "failed") return "document_mismatch";
  if (by.issuer.status !== "passed") return "unverified_issuer";
  return "valid";
}

/** The integrity step for a document hash (null: no document; an Error: unreadable). */
export function integrityStep(onchainHash: string, document: string | Error | null): Step {
  const facts = { recordHash: onchainHash, documentHash: typeof document === "string" ? document : null };
  if (document === null) return { name: "integrity", status: "not_checked", detail: "no document given", facts };
  if (document instanceof Error) {
    return { name: "integrity", status: "failed", detail: `the document is not a record: ${document.message}`, facts };
  }
  if (document.toLowerCase() !== onchainHash.toLowerCase()) {
    return {
      name: "integrity",
      status: "failed",
      detail: `the document hashes to ${document}, not to the on-chain ${onchainHash}`,
      facts,
    };
  }
  return { name: "integrity", status: "passed", detail: "the document matches the on-chain hash", facts };
}

/** The report with the integrity step (and the verdict) recomputed for a document. */
export function withDocument(report: Report, document: string | Error | null): Report {
  if (!report.cert) return report;
  const steps = report.steps.map((s) => (s.name === "integrity" ? integrityStep(report.cert!.recordHash, document) : s));
  return { ...report, steps, verdict: verdictOf(steps) };
}

interface DomainLink {
  status: "ok" | "failed" | "not_checked";
  detail: string;
}

/** The domain link as Tuition's server sees it (the API runs the same check as the CLI). */
async function domainLinkOf(contract: Address, tokenId: bigint, chainId: number): Promise<DomainLink> {
  try {
    const report = await api<{ steps: { name: string; facts: Record<string, unknown> }[] }>(
      `/certificates/${tokenId}/verification`,
      { query: { contract, chainId } },
    );
    const issuer = report.steps.find((s) => s.name === "issuer");
    const status = issuer?.facts.domainLink;
    if (status === "ok" || status === "failed" || status === "not_checked") {
      return { status, detail: String(issuer?.facts.domainLinkDetail ?? "") };
    }
  } catch {
    /* reported as not checked below */
  }
  return { status: "not_checked", detail: "the provider's website could not be checked" };
}

async function revokedBy(contract: Address, tokenId: bigint, network: NetworkInfo): Promise<string | null> {
  const logs = await publicClient(network).getContractEvents({
    address: contract,
    abi: certificateAbi,
    eventName: "CertificateRevoked",
    args: { tokenId },
    fromBlock: network.deployBlock,
  });
  const last = logs[logs.length - 1];
  return last?.args.by ? getAddress(last.args.by) : null;
}

function statusStep(cert: OnchainCertificate, by: string | null): Step {
  const replacedBy = cert.replacedBy !== null ? cert.replacedBy.toString() : null;
  const facts: Step["facts"] = {
    state: "valid",
    revokedAt: null,
    reasonCode: null,
    reason: null,
    revokedBy: null,
    replacedBy,
    removed: cert.removed,
  };
  if (cert.revoked) {
    const reason = REVOKE_REASONS[cert.revokeReason] ?? `reason code ${cert.revokeReason}`;
    Object.assign(facts, {
      state: replacedBy ? "replaced" : "revoked",
      revokedAt: iso(cert.revokedAt),
      reasonCode: cert.revokeReason,
      reason,
      revokedBy: by,
    });
    let detail = `revoked on ${facts.revokedAt} (${reason})`;
    if (replacedBy) detail += `, replaced by certificate ${replacedBy}`;
    return { name: "status", status: "failed", detail, facts };
  }
  if (cert.removed) return { name: "status", status: "failed", detail: "removed by its holder", facts: { ...facts, state: "removed" } };
  return { name: "status", status: "passed", detail: "valid: not revoked, not removed", facts };
}

async function issuerStep(cert: OnchainCertificate, network: NetworkInfo): Promise<Step> {
  const pc = publicClient(network);
  const market = await pc.readContract({ address: cert.contract, abi: certificateAbi, functionName: "market" });
  const [record, provider, link] = await Promise.all([
    pc.readContract({ address: cert.contract, abi: certificateAbi, functionName: "providerRecord", args: [cert.issuer] }),
    pc.readContract({ address: market, abi: marketAbi, functionName: "courseProvider", args: [cert.courseId] }),
    domainLinkOf(cert.contract, cert.tokenId, network.chainId),
  ]);
  const facts: Step["facts"] = {
    issuer: cert.issuer,
    courseId: cert.courseId.toString(),
    courseTitle: cert.courseTitle,
    provider: getAddress(provider),
    providerName: record.name || null,
    providerDomain: record.domain || null,
    verified: record.verified,
    verifiedAt: iso(Number(record.verifiedAt)),
    domainLink: link.status,
    domainLinkDetail: link.detail,
  };
  const who = record.name ? `${record.name} (${record.domain})` : cert.issuer;
  if (!record.verified) return { name: "issuer", status: "failed", detail: `${who} is not verified by the platform`, facts };
  if (link.status === "failed") return { name: "issuer", status: "failed", detail: `${who}: ${link.detail}`, facts };
  return { name: "issuer", status: "passed", detail: `${who}, verified by the platform`, facts };
}

async function holderStep(cert: OnchainCertificate, network: NetworkInfo): Promise<Step> {
  if (cert.removed) {
    return { name: "holder", status: "failed", detail: "nobody: its holder removed it", facts: { holder: null, issuedTo: cert.holder } };
  }
  const holder = getAddress(
    await publicClient(network).readContract({ address: cert.contract, abi: certificateAbi, functionName: "ownerOf", args: [cert.tokenId] }),
  );
  return { name: "holder", status: "passed", detail: `held by ${holder}`, facts: { holder } };
}

/** Verify certificate `tokenId` of `contract` step by step, from one chain (the API's own by
 * default). */
export async function verifyOnChain(contract: Address, tokenId: bigint, cfg: NetworkInfo = config()): Promise<Report> {
  const pc = publicClient(cfg);
  const address = getAddress(contract);
  const known = cfg.contracts.certificate !== null && cfg.contracts.certificate.toLowerCase() === address.toLowerCase();
  const code = await pc.getCode({ address });
  const hasCode = Boolean(code && code !== "0x");
  const existsFacts: Step["facts"] = {
    chainId: cfg.chainId,
    contract: address,
    tokenId: tokenId.toString(),
    knownContract: known,
    hasCode,
  };
  const stop = (detail: string): Report => {
    const steps: Step[] = [
      { name: "exists", status: "failed", detail, facts: existsFacts },
      ...REST.map((name): Step => ({ name, status: "not_checked", detail: "the certificate could not be found", facts: {} })),
    ];
    return { chainId: cfg.chainId, network: cfg, searched: [cfg.chainId], contract: address, tokenId, steps, verdict: verdictOf(steps), cert: null };
  };
  if (!hasCode) return stop(`there is no contract at ${address} on chain ${cfg.chainId}`);
  if (!known) return stop(`${address} is not a Tuition certificate contract`);
  let cert: OnchainCertificate;
  try {
    cert = await readCertificate(address, tokenId, cfg);
  } catch (err) {
    if (err instanceof CertificateNotFound) return stop(`no certificate ${tokenId} was ever issued by ${address}`);
    throw err;
  }
  existsFacts.issuedAt = iso(cert.issuedAt);
  existsFacts.issuedTo = cert.holder;
  const [by, issuer, holder] = await Promise.all([
    cert.revoked ? revokedBy(address, tokenId, cfg) : Promise.resolve(null),
    issuerStep(cert, cfg),
    holderStep(cert, cfg),
  ]);
  const steps: Step[] = [
    { name: "exists", status: "passed", detail: `certificate ${tokenId} on ${address}`, facts: existsFacts },
    statusStep(cert, by),
    issuer,
    integrityStep(cert.recordHash, null),
    holder,
  ];
  return { chainId: cfg.chainId, network: cfg, searched: [cfg.chainId], contract: address, tokenId, steps, verdict: verdictOf(steps), cert };
}

/** The configured chain a verifier named, by chain id or network name (null: none named).
 *
 * @throws Error naming the configured chains when `wanted` is none of them. */
export function chainNamed(wanted: string | null): NetworkInfo | null {
  if (!wanted) return null;
  const found = networks().find((n) => String(n.chainId) === wanted || n.network === wanted);
  if (!found) {
    const known = networks().map((n) => `${n.network} (${n.chainId})`).join(", ");
    throw new Error(`Unknown chain “${wanted}”: Tuition runs on ${known}.`);
  }
  return found;
}

/** Verify `tokenId` as `tuition verify` and the API do: on the chain named, else on every
 * configured chain (the API's own first) until one has it. Another contract than ours is looked
 * up on the chain named, else on the API's own. The report says which chains were searched. */
export async function verifyOnChains(tokenId: bigint, contract: Address | null, chain: NetworkInfo | null): Promise<Report> {
  const ours = (n: NetworkInfo) => n.contracts.certificate;
  if (contract && !networks().some((n) => ours(n)?.toLowerCase() === contract.toLowerCase())) {
    return verifyOnChain(contract, tokenId, chain ?? config());
  }
  const targets = (chain ? [chain] : networks()).filter((n) => ours(n));
  if (!targets.length) throw new Error("No certificate contract is deployed on any configured chain.");
  let first: Report | null = null;
  let unreachable: unknown = null;
  const searched: number[] = [];
  for (const network of targets) {
    let report: Report;
    try {
      report = await verifyOnChain(ours(network)!, tokenId, network);
    } catch (err) {
      if (targets.length === 1) throw err;
      unreachable = err; // another chain may have it
      continue;
    }
    searched.push(network.chainId);
    if (report.cert) return { ...report, searched: [...searched] };
    first = first ?? report;
  }
  if (!first) throw unreachable;
  if (targets.length > 1) {
    const names = targets.map((n) => `${n.network} (${n.chainId})`).join(", ");
    const steps = first.steps.map((s, i) => (i === 0 ? { ...s, detail: `no certificate ${tokenId} on any configured chain: ${names}` } : s));
    return { ...first, steps, searched };
  }
  return { ...first, searched };
}
