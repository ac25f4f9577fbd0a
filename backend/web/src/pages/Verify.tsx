// Public certificate verification: facts come from the certificate contract through the chain's
// RPC endpoint (viem public client), not from the Tuition API. No wallet needed.
import { Fragment } from "preact";
import { useEffect, useState } from "preact/hooks";
import { getAddress, isAddress } from "viem";
import { errorMessage } from "../api";
import {
  certificatePdf,
  CertificateNotFound,
  parseCertificateLink,
  qrSvg,
  recordFromFile,
  recordHash,
  REVOKE_REASONS,
  verifyUrl,
  type OnchainCertificate,
} from "../certificate";
import { splitTokenId } from "../chain";
import {
  chainNamed,
  STEP_LABELS,
  VERDICT_LABELS,
  verifyOnChains,
  withDocument,
  type Report,
  type StepStatus,
} from "../verification";
import { Alert, CopyButton, Loading, useAsync, usePageTitle } from "../components/ui";
import { chainLabel, config, networks } from "../config";
import { formatDate } from "../format";
import { navigate, useLocation } from "../router";

export function VerifyFormPage() {
  usePageTitle("Verify a certificate");
  return (
    <section class="verify">
      <h1 tabIndex={-1}>Verify a certificate</h1>
      <p>
        Tuition certificates live on-chain. This page reads them directly from{" "}
        {networks().map((n) => n.chainName).join(" and ")} — not from our servers — so you can trust what it shows.
      </p>
      <VerifyForm />
    </section>
  );
}

function VerifyForm({ initialContract, initialToken, initialChain }: { initialContract?: string; initialToken?: string; initialChain?: string }) {
  const [contract, setContract] = useState(initialContract ?? config().contracts.certificate ?? "");
  const [token, setToken] = useState(initialToken ?? "");
  const [chain, setChain] = useState(initialChain ?? "");
  const [error, setError] = useState<string | null>(null);
  const submit = (event: Event) => {
    event.preventDefault();
    setError(null);
    const link = parseCertificateLink(token);
    if (!link) {
      setError("Enter a certificate number (token id) or paste a certificate link.");
      return;
    }
    const contractValue = link.contract ?? contract.trim();
    if (!isAddress(contractValue, { strict: false })) {
      setError("The contract address must be 0x followed by 40 hexadecimal characters.");
      return;
    }
    const address = getAddress(contractValue);
    const dflt = config().contracts.certificate;
    const query = new URLSearchParams();
    if (!dflt || address.toLowerCase() !== dflt.toLowerCase()) query.set("contract", address);
    const chosen = link.chain ?? chain;
    if (chosen) query.set("chain", chosen);
    const rest = query.toString();
    navigate(`/verify/${link.tokenId}${rest ? `?${rest}` : ""}`);
  };
  return (
    <form class="card verify-form" onSubmit={submit} noValidate aria-describedby={error ? "verify-error" : undefined}>
      <div class="field">
        <label for="verify-token">Certificate number or link</label>
        <input
          id="verify-token"
          name="token"
          inputMode="text"
          autoComplete="off"
          spellcheck={false}
          value={token}
          onInput={(e) => setToken((e.currentTarget as HTMLInputElement).value)}
          placeholder="A token id, or a certificate link"
          required
        />
      </div>
      <div class="field">
        <label for="verify-contract">Certificate contract address</label>
        <input
          id="verify-contract"
          name="contract"
          autoComplete="off"
          spellcheck={false}
          value={contract}
          onInput={(e) => setContract((e.currentTarget as HTMLInputElement).value)}
          placeholder="0x…"
        />
        <p class="hint">Pre-filled with Tuition's certificate contract on {config().chainName}.</p>
      </div>
      {networks().length > 1 && (
        <div class="field">
          <label for="verify-chain">Chain</label>
          <select id="verify-chain" name="chain" value={chain} onChange={(e) => setChain((e.currentTarget as HTMLSelectElement).value)}>
            <option value="">Any chain Tuition runs on</option>
            {networks().map((n) => (
              <option key={n.chainId} value={String(n.chainId)}>
                {n.chainName} (chain {n.chainId})
              </option>
            ))}
          </select>
          <p class="hint">Leave “any chain” when you do not know: every chain is searched.</p>
        </div>
      )}
      {error && (
        <Alert id="verify-error">{error}</Alert>
      )}
      <button type="submit">Verify</button>
    </form>
  );
}

export function VerifyPage({ tokenId }: { tokenId: string }) {
  const location = useLocation();
  const contractParam = location.query.get("contract");
  const chainParam = location.query.get("chain");
  const contract = contractParam && isAddress(contractParam, { strict: false }) ? getAddress(contractParam) : null;
  let id: bigint | null = null;
  try {
    id = BigInt(tokenId);
  } catch {
    id = null;
  }
  const result = useAsync(async () => {
    if (id === null) throw new Error("That is not a certificate number.");
    return verifyOnChains(id, contract, chainNamed(chainParam));
  }, [tokenId, contract, chainParam]);
  // The hash of a certificate file the verifier picked (or why it could not be read).
  const [document, setDocument] = useState<string | Error | null>(null);
  useEffect(() => setDocument(null), [tokenId, contract, chainParam]);
  const report = result.data ? withDocument(result.data, document) : null;
  usePageTitle(report?.cert ? `Certificate: ${report.cert.courseTitle ?? "course"}` : "Verify a certificate");

  return (
    <section class="verify">
      <h1 tabIndex={-1}>Certificate verification</h1>
      {result.loading && <Loading label="Reading the certificate from the chain…" />}
      {result.error && (
        <Alert>
          <strong>Not verified.</strong> {result.error}
        </Alert>
      )}
      {report && !report.cert && (
        <Alert kind="warning">
          <strong>Not verified.</strong> {report.verdict === "unknown_contract" ? "This is not Tuition's certificate contract: " : ""}
          {sentence(report.steps[0].detail)}
        </Alert>
      )}
      {report?.cert && <CertificateView cert={report.cert} report={report} onDocument={setDocument} />}
      {report && <StepReport report={report} />}
      <details class="verify-other" open={Boolean(result.error) || (report !== null && !report.cert)}>
        <summary>Verify another certificate</summary>
        <VerifyForm initialContract={contract ?? undefined} initialChain={chainParam ?? undefined} />
      </details>
    </section>
  );
}

function sentence(text: string): string {
  return text ? `${text[0].toUpperCase()}${text.slice(1)}.` : "";
}

const STATUS_MARKS: Record<StepStatus, string> = { passed: "✓", failed: "✕", not_checked: "–" };
const STATUS_WORDS: Record<StepStatus, string> = { passed: "passed", failed: "failed", not_checked: "not checked" };

function factValue(value: string | number | boolean | null): string {
  if (value === null) return "—";
  if (typeof value === "boolean") return value ? "yes" : "no";
  return String(value);
}

/** Every step the verdict rests on, with its facts (the same as `tuition verify` prints). */
function StepReport({ report }: { report: Report }) {
  return (
    <section class="card step-report" aria-labelledby="steps-title">
      <h2 id="steps-title">How this was checked</h2>
      <p class="small muted">
        Verdict: <strong data-testid="verdict-code" data-verdict={report.verdict}>{VERDICT_LABELS[report.verdict]}</strong>. The
        same steps as <code>tuition verify</code> and the public API.
      </p>
      <p class="small" data-testid="searched-chains" data-chain-id={report.cert ? report.chainId : undefined}>
        {report.cert ? <>Found on <strong>{report.network.chainName}</strong> (chain {report.chainId})</> : "Not found"}
        {report.searched.length > 1 || !report.cert ? <>; searched {report.searched.map((c) => chainLabel(c)).join(", ")}</> : null}.
      </p>
      <ol class="steps" data-testid="steps">
        {report.steps.map((step) => (
          <li key={step.name} class={`step step-${step.status}`} data-testid={`step-${step.name}`} data-status={step.status}>
            <p>
              <span class="step-mark" aria-hidden="true">
                {STATUS_MARKS[step.status]}
              </span>{" "}
              <strong>{STEP_LABELS[step.name]}</strong> — <span class="step-status">{STATUS_WORDS[step.status]}</span>:{" "}
              <span class="step-detail">{step.detail}</span>
            </p>
            {Object.keys(step.facts).length > 0 && (
              <dl class="facts small">
                {Object.entries(step.facts).map(([key, value]) => (
                  <Fragment key={key}>
                    <dt>{key}</dt>
                    <dd>
                      <code class="wrap">{factValue(value)}</code>
                    </dd>
                  </Fragment>
                ))}
              </dl>
            )}
          </li>
        ))}
      </ol>
    </section>
  );
}

function Verdict({ cert, report, contractParam }: { cert: OnchainCertificate; report: Report; contractParam: string | null }) {
  const issuer = report.steps.find((s) => s.name === "issuer");
  const bad = report.verdict !== "valid";
  return (
    <div class={`verdict ${bad ? "verdict-revoked" : "verdict-valid"}`} role="status" data-testid="verdict" data-verdict={report.verdict}>
      <span class="verdict-icon" aria-hidden="true">
        {bad ? "✕" : "✓"}
      </span>
      <div>
        {cert.revoked ? (
          <>
            <strong>Revoked</strong>
            <p>
              This certificate was issued, then revoked on {formatDate(cert.revokedAt, true)}
              {cert.revokeReason ? ` — ${REVOKE_REASONS[cert.revokeReason] ?? `reason code ${cert.revokeReason}`}` : ""}.
              {cert.replacedBy !== null && (
                <>
                  {" "}It was replaced by{" "}
                  <a href={verifyUrl(cert.replacedBy, contractParam, report.chainId)} data-testid="replaced-by">
                    certificate #{cert.replacedBy.toString()}
                  </a>
                  .
                </>
              )}
              {cert.removed ? " Its holder has also removed it." : ""}
            </p>
          </>
        ) : cert.removed ? (
          <>
            <strong>Removed</strong>
            <p>This certificate was issued, then removed by its holder: they no longer present it.</p>
          </>
        ) : report.verdict === "document_mismatch" ? (
          <>
            <strong>{VERDICT_LABELS.document_mismatch}</strong>
            <p>The certificate is on-chain, but the file you checked is not the record that was certified.</p>
          </>
        ) : report.verdict === "unverified_issuer" ? (
          <>
            <strong>{VERDICT_LABELS.unverified_issuer}</strong>
            <p>
              This certificate exists on-chain and has not been revoked, but the platform does not vouch for its issuer:{" "}
              {issuer?.detail}. Anyone can create a course and certify it.
            </p>
          </>
        ) : (
          <>
            <strong>Valid</strong>
            <p>This certificate exists on-chain, has not been revoked, and its issuer is verified by the platform.</p>
          </>
        )}
      </div>
    </div>
  );
}

function CertificateView({ cert, report, onDocument }: { cert: OnchainCertificate; report: Report; onDocument: (d: string | Error | null) => void }) {
  const cfg = report.network;
  const ours = config().contracts.certificate;
  const contractParam = ours && cert.contract.toLowerCase() === ours.toLowerCase() ? null : cert.contract;
  const url = verifyUrl(cert.tokenId, contractParam, report.chainId);
  const [qr, setQr] = useState<string | null>(null);
  const [pdfBusy, setPdfBusy] = useState(false);
  const [pdfError, setPdfError] = useState<string | null>(null);
  useEffect(() => {
    qrSvg(url).then(setQr).catch(() => setQr(null));
  }, [url]);
  const consistent = splitTokenId(cert.tokenId);
  const idMatches = consistent.courseId === cert.courseId && consistent.learner.toLowerCase() === cert.holder.toLowerCase();
  const status = cert.revoked ? "Revoked" : cert.removed ? "Removed by its holder" : "Valid";
  const issuer = report.steps.find((s) => s.name === "issuer");

  const downloadPdf = async () => {
    setPdfBusy(true);
    setPdfError(null);
    try {
      const blob = await certificatePdf(cert, cfg.chainName, url);
      const a = document.createElement("a");
      a.href = URL.createObjectURL(blob);
      a.download = `tuition-certificate-${cert.courseId}-${cert.holder.slice(2, 8)}.pdf`;
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
    } catch (err) {
      setPdfError(errorMessage(err));
    } finally {
      setPdfBusy(false);
    }
  };

  return (
    <div class="certificate-view" data-testid="certificate-view" data-revoked={cert.revoked ? "true" : "false"}>
      <Verdict cert={cert} report={report} contractParam={contractParam} />
      <div class="certificate-grid">
        <div class="card">
          <h2>{cert.courseTitle ?? `Course #${cert.courseId}`}</h2>
          <dl class="facts">
            <dt>Holder</dt>
            <dd>
              <code data-testid="holder">{cert.holder}</code>
            </dd>
            <dt>Course</dt>
            <dd>
              {cert.courseTitle ? `${cert.courseTitle} ` : ""}(on-chain course #{cert.courseId.toString()})
            </dd>
            <dt>Issuer (course provider)</dt>
            <dd>
              {issuer?.facts.providerName ? <strong>{String(issuer.facts.providerName)} </strong> : null}
              {issuer?.facts.providerDomain ? <span>({String(issuer.facts.providerDomain)}) </span> : null}
              <code>{cert.issuer}</code>{" "}
              <span data-testid="issuer-verified">
                {cert.issuerVerified ? "— verified by the platform" : "— not verified by the platform"}
              </span>
            </dd>
            <dt>Issued</dt>
            <dd>{formatDate(cert.issuedAt, true)}</dd>
            <dt>Status</dt>
            <dd data-testid="status">{status}</dd>
            <dt>Record hash</dt>
            <dd>
              <code class="wrap">{cert.recordHash}</code>
            </dd>
            <dt>Certificate contract</dt>
            <dd>
              <code class="wrap">{cert.contract}</code> on {cfg.chainName} (chain {cfg.chainId})
            </dd>
            <dt>Token id</dt>
            <dd>
              <code class="wrap">{cert.tokenId.toString()}</code>
              {!idMatches && <span class="warning-text"> (does not follow Tuition's id scheme)</span>}
            </dd>
          </dl>
          <RecordCheck cert={cert} onDocument={onDocument} />
        </div>
        <div class="card certificate-side">
          {cert.image ? (
            <img class="certificate-image" src={cert.image} alt={`On-chain certificate image for ${cert.courseTitle ?? "the course"}`} />
          ) : (
            <p class="muted">This certificate has no on-chain image.</p>
          )}
          <h3>Share</h3>
          {qr && <div class="qr" role="img" aria-label="QR code linking to this verification page" dangerouslySetInnerHTML={{ __html: qr }} />}
          <p class="small wrap">
            <a href={url}>{url}</a>
          </p>
          <div class="button-row">
            <CopyButton text={url} label="Copy link" />
            <button type="button" class="button-small" onClick={downloadPdf} disabled={pdfBusy} data-testid="download-pdf">
              {pdfBusy ? "Preparing PDF…" : "Download PDF"}
            </button>
          </div>
          {pdfError && <Alert>{pdfError}</Alert>}
        </div>
      </div>
    </div>
  );
}

function RecordCheck({ cert, onDocument }: { cert: OnchainCertificate; onDocument: (d: string | Error | null) => void }) {
  const [result, setResult] = useState<{ ok: boolean; hash?: string; message: string } | null>(null);
  const onFile = async (event: Event) => {
    const input = event.currentTarget as HTMLInputElement;
    const file = input.files?.[0];
    if (!file) return;
    try {
      const text = await file.text();
      const parsed = JSON.parse(text);
      const hash = recordHash(recordFromFile(parsed));
      onDocument(hash);
      const ok = hash.toLowerCase() === cert.recordHash.toLowerCase();
      setResult({
        ok,
        hash,
        message: ok
          ? "This file is the certificate record that was hashed on-chain."
          : "This file does NOT match the on-chain record: it is another certificate's record, or it was altered.",
      });
    } catch (err) {
      onDocument(err instanceof Error ? err : new Error(String(err)));
      setResult({ ok: false, message: `Could not read that file as certificate JSON: ${errorMessage(err)}` });
    }
  };
  return (
    <div class="record-check">
      <h3>Check a certificate file</h3>
      <p class="small muted">
        The learner's certificate record (JSON) is kept off-chain; its hash is on-chain. Upload the file to check it matches —
        it never leaves your browser.
      </p>
      <label for="record-file">Certificate JSON file</label>
      <input id="record-file" type="file" accept="application/json,.json" onChange={onFile} />
      {result && (
        <div class={`alert ${result.ok ? "alert-success" : "alert-error"}`} role={result.ok ? "status" : "alert"} data-testid="record-check">
          <p>
            <strong>{result.ok ? "Match." : "No match."}</strong> {result.message}
          </p>
          {result.hash && (
            <p class="small">
              File hash <code class="wrap">{result.hash}</code>
            </p>
          )}
        </div>
      )}
    </div>
  );
}

export { CertificateNotFound };
