"""Verify a certificate from the chain alone, step by step (as Blockcerts verifiers report).

Steps: the certificate exists on the certificate contract; its status (valid or revoked); the
issuer (the course's provider, from the market contract); and, given the off-chain record, that
its hash matches the one stored on-chain.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from web3 import HTTPProvider, Web3
from web3.exceptions import ContractLogicError

from backend.certificates.service import record_hash
from backend.chain.artifacts import CERTIFICATE_FIELDS, load_abi


@dataclass
class Step:
    """One check and its outcome."""

    name: str
    ok: bool
    detail: str


@dataclass
class Report:
    """The facts read from the chain and the checks made on them."""

    token_id: int
    facts: dict[str, Any] = field(default_factory=dict)
    steps: list[Step] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        """True only when every step passed."""
        return bool(self.steps) and all(step.ok for step in self.steps)


def verify_certificate(
    rpc_url: str, certificate: str, token_id: int, record: bytes | None = None
) -> Report:
    """Read certificate `token_id` from `certificate` on the chain at `rpc_url` and check it."""
    w3 = Web3(HTTPProvider(rpc_url, request_kwargs={"timeout": 30}))
    contract = w3.eth.contract(
        address=Web3.to_checksum_address(certificate), abi=load_abi("CourseCertificate")
    )
    report = Report(token_id=token_id)
    try:
        facts = contract.functions.verify(token_id).call()
    except ContractLogicError:
        report.steps.append(Step("exists", False, "no certificate with this token id"))
        return report
    cert = dict(zip(CERTIFICATE_FIELDS, facts, strict=True))
    holder, course_id, issuer = cert["holder"], cert["courseId"], cert["issuer"]
    revoked, revoked_at, reason = cert["revoked"], cert["revokedAt"], cert["revokeReason"]
    market = contract.functions.market().call()
    market_contract = w3.eth.contract(address=market, abi=load_abi("CourseMarket"))
    report.facts = {
        "holder": holder,
        "courseId": course_id,
        "courseTitle": market_contract.functions.courseTitle(course_id).call(),
        "issuer": issuer,
        "issuerVerified": cert["issuerVerified"],
        "issuedAt": datetime.fromtimestamp(cert["issuedAt"], UTC).isoformat(),
        "recordHash": "0x" + bytes(cert["recordHash"]).hex(),
        "revoked": revoked,
        "removed": cert["removed"],
        "replacedBy": cert["replacedBy"] or None,
        "chainId": w3.eth.chain_id,
        "certificateContract": contract.address,
    }
    report.steps.append(Step("exists", True, f"issued to {holder}"))
    if revoked:
        when = datetime.fromtimestamp(revoked_at, UTC).isoformat()
        replaced = f", replaced by {cert['replacedBy']}" if cert["replacedBy"] else ""
        detail = f"revoked at {when} (reason {reason}{replaced})"
        report.steps.append(Step("status", False, detail))
    elif cert["removed"]:
        report.steps.append(Step("status", False, "removed by its holder"))
    else:
        report.steps.append(Step("status", True, "not revoked"))
    report.steps.append(Step("issuer", True, f"course provider {issuer}"))
    if record is not None:
        try:
            computed = record_hash(json.loads(record))
        except ValueError as exc:
            report.steps.append(Step("integrity", False, f"record is not JSON: {exc}"))
        else:
            matches = computed == report.facts["recordHash"]
            detail = "record matches the on-chain hash" if matches else f"record hash {computed}"
            report.steps.append(Step("integrity", matches, detail))
    return report
