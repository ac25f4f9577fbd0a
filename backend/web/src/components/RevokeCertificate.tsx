// Revoking a certificate from the product: a reason from the fixed list and a note, sent to the
// provider's or the admin's endpoint; the worker revokes on-chain and the indexer reports it.
import { verifyPath } from "../certificate";
import { useState } from "preact/hooks";
import { api, errorMessage } from "../api";
import { shortAddress } from "../format";
import { Link } from "../router";
import { certificateStatusLabel } from "../pages/Account";
import { shortTokenId } from "./CertificatePanel";
import { Alert } from "./ui";

/** The reasons a person may choose (the others the product writes itself). */
export const MANUAL_REASONS: [number, string][] = [
  [1, "Issued in error"],
  [2, "Academic misconduct"],
  [3, "Course withdrawn"],
  [4, "Learner request"],
];

export interface IssuedCertificate {
  id: number;
  courseId: number;
  courseTitle: string;
  address: string;
  chainId: number | null;
  tokenId: string | null;
  status: string;
  revokeReason: string | null;
  revokeRequestedAt: string | null;
  revokeRequestedBy: string | null;
}

/** Whether a revocation was asked for and the chain has not confirmed it yet. */
export function revocationPending(c: IssuedCertificate): boolean {
  return c.revokeRequestedAt !== null && c.status !== "revoked";
}

export function RevokeForm({
  certificate,
  endpoint,
  onRevoked,
}: {
  certificate: IssuedCertificate;
  endpoint: string; // "/provider/certificates" or "/admin/certificates"
  onRevoked: () => void;
}) {
  const [open, setOpen] = useState(false);
  const [reason, setReason] = useState(1);
  const [note, setNote] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const id = `revoke-${certificate.id}`;
  if (certificate.status !== "minted" || certificate.revokeRequestedAt) return null;
  if (!open) {
    return (
      <button type="button" class="button-secondary button-small" onClick={() => setOpen(true)}>
        Revoke…
      </button>
    );
  }
  const submit = async (event: Event) => {
    event.preventDefault();
    setError(null);
    if (note.trim().length < 3) return setError("Add a note (at least 3 characters): it goes into the audit log.");
    setBusy(true);
    try {
      await api(`${endpoint}/${certificate.id}/revoke`, { method: "POST", body: { reasonCode: reason, note: note.trim() } });
      setOpen(false);
      onRevoked();
    } catch (err) {
      setError(errorMessage(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="revoke-form" onSubmit={submit} noValidate data-testid="revoke-form">
      <div class="field">
        <label for={`${id}-reason`}>Reason</label>
        <select id={`${id}-reason`} value={reason} onChange={(e) => setReason(Number((e.currentTarget as HTMLSelectElement).value))}>
          {MANUAL_REASONS.map(([code, label]) => (
            <option key={code} value={code}>
              {label}
            </option>
          ))}
        </select>
      </div>
      <div class="field">
        <label for={`${id}-note`}>Note</label>
        <input id={`${id}-note`} value={note} maxLength={400} onInput={(e) => setNote((e.currentTarget as HTMLInputElement).value)} />
      </div>
      {error && <Alert>{error}</Alert>}
      <div class="button-row">
        <button type="submit" disabled={busy}>
          Revoke certificate
        </button>
        <button type="button" class="button-secondary" onClick={() => setOpen(false)}>
          Cancel
        </button>
      </div>
    </form>
  );
}

/** One certificate's row: learner, token, status (and the revocation on its way). */
export function IssuedCertificateRow({
  certificate: c,
  endpoint,
  onChange,
}: {
  certificate: IssuedCertificate;
  endpoint: string;
  onChange: () => void;
}) {
  return (
    <tr data-testid="issued-certificate" data-status={c.status} data-certificate-id={c.id}>
      <td>{c.courseTitle}</td>
      <td>
        <code title={c.address}>{shortAddress(c.address)}</code>
      </td>
      <td>{c.tokenId ? <Link href={verifyPath(c.tokenId, c.chainId)}>#{shortTokenId(c.tokenId)}</Link> : "—"}</td>
      <td data-testid="issued-status">
        {revocationPending(c) ? (
          <span role="status">
            <span class="spinner" aria-hidden="true" /> revocation sent; waiting for the chain
          </span>
        ) : (
          certificateStatusLabel(c.status)
        )}
        {c.revokeReason && <div class="small muted">{c.revokeReason}</div>}
      </td>
      <td>
        <RevokeForm certificate={c} endpoint={endpoint} onRevoked={onChange} />
      </td>
    </tr>
  );
}
