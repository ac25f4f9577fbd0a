// The learner's certificate for one course: minting / claimable voucher / minted / revoked.
import { verifyPath } from "../certificate";
import { useState } from "preact/hooks";
import { encodeFunctionData, type Hex } from "viem";
import { errorMessage } from "../api";
import { certificateAbi } from "../chain";
import { config, networkOf } from "../config";
import { fetchMyCertificates, type CertificateInfo } from "../models";
import { sendAndWait, type TxProgress } from "../purchase";
import { Link } from "../router";
import { Alert, TxHash, TxStatus, useAsync, useInterval } from "./ui";

export function CertificatePanel({
  courseId,
  onchainCourseId,
  courseCompleted,
  mode = "mint",
}: {
  courseId: number;
  onchainCourseId: string | null;
  courseCompleted: boolean;
  mode?: "mint" | "voucher";
}) {
  const certs = useAsync(() => fetchMyCertificates(), [courseId, courseCompleted]);
  const cert = certs.data?.find((c) => c.courseId === courseId) ?? null;
  // A mined claim stays "claimable" here until the indexer has seen it on-chain: keep asking.
  const [claimed, setClaimed] = useState(false);
  const waiting = Boolean(
    (courseCompleted && !cert) ||
      (cert && (cert.status === "requested" || cert.status === "minting" || (cert.status === "claimable" && claimed))),
  );
  useInterval(() => certs.reload(), 2000, waiting);
  const onClaimed = () => {
    setClaimed(true);
    certs.reload();
  };

  return (
    <section class="card certificate-panel" aria-labelledby={`cert-${courseId}`} data-testid="certificate-panel" data-status={cert?.status ?? (courseCompleted ? "pending" : "none")}>
      <h2 id={`cert-${courseId}`}>Certificate</h2>
      {certs.error && <Alert>{certs.error}</Alert>}
      <CertificateState cert={cert} mode={mode} courseCompleted={courseCompleted} onchainCourseId={onchainCourseId} onClaimed={onClaimed} />
    </section>
  );
}

function CertificateState({
  cert,
  mode,
  courseCompleted,
  onchainCourseId,
  onClaimed,
}: {
  cert: CertificateInfo | null;
  mode: "mint" | "voucher";
  courseCompleted: boolean;
  onchainCourseId: string | null;
  onClaimed: () => void;
}) {
  if (!cert) {
    return courseCompleted ? (
      <p role="status">
        <span class="spinner" aria-hidden="true" /> Course completed! Preparing your certificate…
      </p>
    ) : mode === "voucher" ? (
      <p class="muted">Complete every lesson to earn an on-chain certificate, which you claim with your wallet (you pay the gas).</p>
    ) : (
      <p class="muted">Complete every lesson to earn an on-chain certificate.</p>
    );
  }
  switch (cert.status) {
    case "requested":
    case "minting":
      return (
        <p role="status">
          <span class="spinner" aria-hidden="true" /> Course completed!{" "}
          {cert.mode === "voucher" ? "Preparing your certificate voucher…" : "Your certificate is being minted on-chain…"}
        </p>
      );
    case "claimable":
      return <ClaimCertificate cert={cert} onchainCourseId={onchainCourseId} onClaimed={onClaimed} />;
    case "minted":
      return (
        <div role="status">
          <p class="success-text">
            <strong>Certificate minted.</strong> Token #{shortTokenId(cert.tokenId)}
          </p>
          {cert.txHash && (
            <p>
              <TxHash hash={cert.txHash} />
            </p>
          )}
          {cert.tokenId && (
            <p>
              <Link href={verifyPath(cert.tokenId, cert.chainId)} class="button">
                View and share certificate
              </Link>
            </p>
          )}
        </div>
      );
    case "revoked":
      return (
        <Alert kind="warning">
          This certificate was revoked.{" "}
          {cert.replacedByTokenId ? (
            <Link href={verifyPath(cert.replacedByTokenId, cert.chainId)}>See the corrected certificate</Link>
          ) : (
            cert.tokenId && <Link href={verifyPath(cert.tokenId, cert.chainId)}>See the on-chain record</Link>
          )}
        </Alert>
      );
    case "removed":
      return (
        <Alert kind="info">
          This certificate was removed by its holder.{" "}
          {cert.tokenId && <Link href={verifyPath(cert.tokenId, cert.chainId)}>See the on-chain record</Link>}
        </Alert>
      );
    default:
      return <p>Certificate status: {cert.status}</p>;
  }
}

export function shortTokenId(tokenId: string | null): string {
  if (!tokenId) return "?";
  return tokenId.length > 16 ? `${tokenId.slice(0, 6)}…${tokenId.slice(-6)}` : tokenId;
}

function ClaimCertificate({ cert, onchainCourseId, onClaimed }: { cert: CertificateInfo; onchainCourseId: string | null; onClaimed: () => void }) {
  const [progress, setProgress] = useState<TxProgress>({ phase: "idle", message: "" });
  const voucher = cert.voucher;
  // The certificate's own chain: its contract there, the wallet switched there to claim.
  const network = networkOf(cert.chainId) ?? config();
  const courseOnchain = voucher?.onchainCourseId || (network.chainId === config().chainId ? onchainCourseId : null);
  const certificateContract = network.contracts.certificate;
  const claim = async () => {
    if (!voucher || !courseOnchain || !certificateContract) return;
    try {
      await sendAndWait(
        {
          to: certificateContract,
          data: encodeFunctionData({
            abi: certificateAbi,
            functionName: "claim",
            args: [BigInt(courseOnchain), voucher.recordHash as Hex, BigInt(voucher.deadline), voucher.signature as Hex],
          }),
          chainId: network.chainId,
        },
        "Claim certificate",
        setProgress,
      );
      onClaimed();
    } catch (err) {
      setProgress({ phase: "failed", message: errorMessage(err) });
    }
  };
  const busy = progress.phase === "working" || progress.phase === "wallet" || progress.phase === "pending";
  // Mined: claiming again would revert, so no button while the indexer catches up.
  const claimed = progress.phase === "confirmed";
  return (
    <div>
      {claimed ? (
        <p role="status">
          <span class="spinner" aria-hidden="true" /> Certificate claimed. Waiting for the chain to confirm it…
        </p>
      ) : (
        <>
          <p>
            <strong>Your certificate is ready to claim.</strong> Claiming mints it to your wallet; you pay the gas.
          </p>
          {voucher && (
            <p class="muted small">Voucher valid until {new Date(Number(voucher.deadline) * 1000).toUTCString()}.</p>
          )}
          <button type="button" onClick={claim} disabled={busy || !voucher || !courseOnchain}>
            Claim certificate
          </button>
        </>
      )}
      <TxStatus progress={progress} testId="claim-status" />
    </div>
  );
}

/**
 * The holder removes (burns) its certificate: it stops presenting it. Two clicks (no dialog);
 * the chain keeps the record, so verifiers see "removed by its holder".
 */
export function RemoveCertificate({ cert, onRemoved }: { cert: CertificateInfo; onRemoved: () => void }) {
  const [asking, setAsking] = useState(false);
  const [progress, setProgress] = useState<TxProgress>({ phase: "idle", message: "" });
  const network = networkOf(cert.chainId) ?? config();
  const certificateContract = network.contracts.certificate;
  const tokenId = cert.tokenId;
  useInterval(onRemoved, 2000, progress.phase === "confirmed"); // until the indexer has seen it
  if (!tokenId || !certificateContract) return null;
  const remove = async () => {
    try {
      await sendAndWait(
        {
          to: certificateContract,
          data: encodeFunctionData({ abi: certificateAbi, functionName: "remove", args: [BigInt(tokenId)] }),
          chainId: network.chainId,
        },
        "Remove certificate",
        setProgress,
      );
      onRemoved();
    } catch (err) {
      setProgress({ phase: "failed", message: errorMessage(err) });
    }
  };
  const busy = progress.phase === "working" || progress.phase === "wallet" || progress.phase === "pending";
  return (
    <div class="remove-certificate">
      {progress.phase === "confirmed" ? (
        <p role="status">
          <span class="spinner" aria-hidden="true" /> Removed. Waiting for the chain to confirm it…
        </p>
      ) : asking ? (
        <p>
          Remove this certificate from your wallet? Verifiers will see it as removed; this cannot be undone.{" "}
          <button type="button" class="button-small" onClick={remove} disabled={busy} data-testid="confirm-remove">
            Yes, remove it
          </button>{" "}
          <button type="button" class="button-small" onClick={() => setAsking(false)} disabled={busy}>
            Keep it
          </button>
        </p>
      ) : (
        <button type="button" class="button-small" onClick={() => setAsking(true)} data-testid="remove-certificate">
          Remove from my wallet
        </button>
      )}
      <TxStatus progress={progress} testId="remove-status" />
    </div>
  );
}

