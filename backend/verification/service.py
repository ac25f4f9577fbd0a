"""Verify a certificate from the chain alone, step by step (as Blockcerts verifiers report).

One function, `verify_certificate`, answers `tuition verify` and the public API; the web page
reads the chain itself and follows the same rules (backend/web/src/verification.ts), and a test
compares the three. Five steps, always in this order, each passed / failed / not checked with
the facts behind it:

1. exists: the token on the certificate contract, and whether that contract is the deployment's;
2. status: valid, revoked (reason, date, by whom), replaced by a correction, removed by its holder;
3. issuer: the course's provider, its public record, the platform's verification and the
   provider's website naming the issuer (domain link);
4. integrity: a given document hashes to the on-chain record hash (not checked without one);
5. holder: who holds it now.

The verdict is VALID only when the certificate exists on our contract, is neither revoked nor
removed, its issuer is verified by the platform (and its website does not contradict it), a
given document matches, and someone holds it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any

import requests
from web3 import HTTPProvider, Web3
from web3.exceptions import ContractLogicError, Web3Exception

from backend.certificates.models import RevokeReason
from backend.certificates.service import record_hash
from backend.chain.artifacts import CERTIFICATE_FIELDS, load_abi
from backend.chain.deployment import Deployment, current_deployment
from backend.core.config import Settings
from backend.verification.domain_link import (
    DEFAULT_URL_TEMPLATE,
    DomainLink,
    LinkStatus,
    check_domain_link,
)

ZERO_ADDRESS = "0x" + "0" * 40


class StepStatus:
    """How one step ended."""

    PASSED = "passed"
    FAILED = "failed"
    NOT_CHECKED = "not_checked"


class Verdict:
    """The one-word answer, most serious first."""

    NOT_FOUND = "not_found"  # no such certificate, or no contract at that address
    UNKNOWN_CONTRACT = "unknown_contract"  # a contract that is not this deployment's
    REVOKED = "revoked"
    REPLACED = "replaced"  # revoked as corrected: another certificate replaces it
    REMOVED = "removed"  # burned by its holder
    DOCUMENT_MISMATCH = "document_mismatch"
    UNVERIFIED_ISSUER = "unverified_issuer"
    VALID = "valid"


STEP_NAMES = ("exists", "status", "issuer", "integrity", "holder")


@dataclass
class Step:
    """One check: its status, a line for humans and the facts behind it."""

    name: str
    status: str
    detail: str
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether the step passed."""
        return self.status == StepStatus.PASSED


@dataclass
class Report:
    """Every step of one verification and the verdict they add up to."""

    chain_id: int
    contract: str
    token_id: int
    steps: list[Step]
    verdict: str
    # The chains looked at, in order, when the chain was not given (the last one answered).
    searched: list[int] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        """Whether the verdict is VALID."""
        return self.verdict == Verdict.VALID

    @property
    def found(self) -> bool:
        """Whether the certificate exists on this report's chain."""
        return self.steps[0].ok

    def step(self, name: str) -> Step:
        """The step called `name`."""
        return next(s for s in self.steps if s.name == name)

    def as_json(self) -> dict[str, Any]:
        """The report as the API and `tuition verify --json` print it (token ids as strings)."""
        return {
            "chainId": self.chain_id,
            "contract": self.contract,
            "tokenId": str(self.token_id),
            "verdict": self.verdict,
            "valid": self.valid,
            "steps": [
                {"name": s.name, "status": s.status, "detail": s.detail, "facts": s.facts}
                for s in self.steps
            ],
            "searchedChains": list(self.searched),
        }


@dataclass(frozen=True)
class VerifyOptions:
    """Where the verifier looks besides the chain."""

    known_contracts: frozenset[str] = frozenset()  # lower-case addresses of our contracts
    from_block: int = 0  # where to look for revocation events (the deployment block)
    domain_link: bool = True  # fetch the provider's well-known file (False: offline)
    domain_link_url: str = DEFAULT_URL_TEMPLATE


@cache
def _web3(rpc_url: str) -> Web3:
    return Web3(HTTPProvider(rpc_url, request_kwargs={"timeout": 30}))


def _iso(timestamp: int) -> str | None:
    return datetime.fromtimestamp(timestamp, UTC).isoformat() if timestamp else None


def _not_checked(names: Iterable[str], why: str) -> list[Step]:
    return [Step(name, StepStatus.NOT_CHECKED, why) for name in names]


def _document_step(document: bytes | None, onchain_hash: str) -> Step:
    facts: dict[str, Any] = {"recordHash": onchain_hash, "documentHash": None}
    if document is None:
        return Step("integrity", StepStatus.NOT_CHECKED, "no document given", facts)
    try:
        computed = record_hash(json.loads(document))
    except (ValueError, TypeError) as exc:
        return Step("integrity", StepStatus.FAILED, f"the document is not a record: {exc}", facts)
    facts["documentHash"] = computed
    if computed != onchain_hash:
        detail = f"the document hashes to {computed}, not to the on-chain {onchain_hash}"
        return Step("integrity", StepStatus.FAILED, detail, facts)
    return Step("integrity", StepStatus.PASSED, "the document matches the on-chain hash", facts)


def _revoked_by(contract: Any, token_id: int, from_block: int) -> str | None:
    logs = contract.events.CertificateRevoked().get_logs(
        from_block=from_block, argument_filters={"tokenId": token_id}
    )
    return str(logs[-1]["args"]["by"]) if logs else None


def _status_step(contract: Any, token_id: int, cert: dict[str, Any], from_block: int) -> Step:
    replaced_by = int(cert["replacedBy"])
    facts: dict[str, Any] = {
        "state": "valid",
        "revokedAt": None,
        "reasonCode": None,
        "reason": None,
        "revokedBy": None,
        "replacedBy": str(replaced_by) if replaced_by else None,
        "removed": bool(cert["removed"]),
    }
    if cert["revoked"]:
        code = int(cert["revokeReason"])
        facts.update(
            state="replaced" if replaced_by else "revoked",
            revokedAt=_iso(int(cert["revokedAt"])),
            reasonCode=code,
            reason=RevokeReason.label(code),
            revokedBy=_revoked_by(contract, token_id, from_block),
        )
        detail = f"revoked on {facts['revokedAt']} ({facts['reason']})"
        if replaced_by:
            detail += f", replaced by certificate {replaced_by}"
        return Step("status", StepStatus.FAILED, detail, facts)
    if cert["removed"]:
        facts["state"] = "removed"
        return Step("status", StepStatus.FAILED, "removed by its holder", facts)
    return Step("status", StepStatus.PASSED, "valid: not revoked, not removed", facts)


def _issuer_step(
    w3: Web3, contract: Any, cert: dict[str, Any], chain_id: int, options: VerifyOptions
) -> Step:
    issuer = str(cert["issuer"])
    course_id = int(cert["courseId"])
    market = w3.eth.contract(
        address=contract.functions.market().call(), abi=load_abi("CourseMarket")
    )
    name, domain, verified, verified_at, _by = contract.functions.providerRecord(issuer).call()
    if options.domain_link:
        link = check_domain_link(
            domain or None, issuer, chain_id, url_template=options.domain_link_url
        )
    else:
        link = DomainLink(LinkStatus.NOT_CHECKED, "offline: the domain link was not checked")
    facts = {
        "issuer": issuer,
        "courseId": str(course_id),
        "courseTitle": market.functions.courseTitle(course_id).call(),
        "provider": str(market.functions.courseProvider(course_id).call()),
        "providerName": name or None,
        "providerDomain": domain or None,
        "verified": bool(verified),
        "verifiedAt": _iso(int(verified_at)),
        "domainLink": link.status,
        "domainLinkDetail": link.detail,
    }
    who = f"{name} ({domain})" if name else issuer
    if not verified:
        return Step("issuer", StepStatus.FAILED, f"{who} is not verified by the platform", facts)
    if link.status == LinkStatus.FAILED:
        return Step("issuer", StepStatus.FAILED, f"{who}: {link.detail}", facts)
    return Step("issuer", StepStatus.PASSED, f"{who}, verified by the platform", facts)


def _holder_step(contract: Any, token_id: int, cert: dict[str, Any]) -> Step:
    if cert["removed"]:
        facts = {"holder": None, "issuedTo": str(cert["holder"])}
        return Step("holder", StepStatus.FAILED, "nobody: its holder removed it", facts)
    holder = str(contract.functions.ownerOf(token_id).call())
    return Step("holder", StepStatus.PASSED, f"held by {holder}", {"holder": holder})


def _verdict(steps: list[Step]) -> str:
    by_name = {s.name: s for s in steps}
    exists = by_name["exists"]
    if not exists.ok:
        if exists.facts["hasCode"] and not exists.facts["knownContract"]:
            return Verdict.UNKNOWN_CONTRACT
        return Verdict.NOT_FOUND
    state = by_name["status"].facts["state"]
    if state != "valid":
        return {"revoked": Verdict.REVOKED, "replaced": Verdict.REPLACED}.get(
            state, Verdict.REMOVED
        )
    if by_name["integrity"].status == StepStatus.FAILED:
        return Verdict.DOCUMENT_MISMATCH
    if not by_name["issuer"].ok:
        return Verdict.UNVERIFIED_ISSUER
    return Verdict.VALID


def verify_certificate(
    rpc_url: str,
    certificate: str,
    token_id: int,
    document: bytes | None = None,
    options: VerifyOptions | None = None,
) -> Report:
    """Read certificate `token_id` from contract `certificate` on the chain at `rpc_url`, check
    it step by step and return the report (the chain is asked, never the database)."""
    options = options or VerifyOptions()
    w3 = _web3(rpc_url)
    address = Web3.to_checksum_address(certificate)
    chain_id = int(w3.eth.chain_id)
    contract = w3.eth.contract(address=address, abi=load_abi("CourseCertificate"))
    known = address.lower() in options.known_contracts
    has_code = len(w3.eth.get_code(address)) > 0
    exists_facts: dict[str, Any] = {
        "chainId": chain_id,
        "contract": address,
        "tokenId": str(token_id),
        "knownContract": known,
        "hasCode": has_code,
    }
    rest = STEP_NAMES[1:]

    def stop(detail: str) -> Report:
        steps = [Step("exists", StepStatus.FAILED, detail, exists_facts)]
        steps += _not_checked(rest, "the certificate could not be found")
        return Report(chain_id, address, token_id, steps, _verdict(steps))

    if not has_code:
        return stop(f"there is no contract at {address} on chain {chain_id}")
    if not known:
        return stop(f"{address} is not a Tuition certificate contract")
    try:
        cert = dict(
            zip(CERTIFICATE_FIELDS, contract.functions.verify(token_id).call(), strict=True)
        )
    except ContractLogicError:
        return stop(f"no certificate {token_id} was ever issued by {address}")
    onchain_hash = "0x" + bytes(cert["recordHash"]).hex()
    exists_facts["issuedAt"] = _iso(int(cert["issuedAt"]))
    exists_facts["issuedTo"] = str(cert["holder"])
    steps = [
        Step("exists", StepStatus.PASSED, f"certificate {token_id} on {address}", exists_facts),
        _status_step(contract, token_id, cert, options.from_block),
        _issuer_step(w3, contract, cert, chain_id, options),
        _document_step(document, onchain_hash),
        _holder_step(contract, token_id, cert),
    ]
    return Report(chain_id, address, token_id, steps, _verdict(steps))


@dataclass(frozen=True)
class ChainTarget:
    """Where a certificate may live: one configured chain's RPC, contract and options."""

    chain_id: int
    name: str
    rpc_url: str
    certificate: str
    options: VerifyOptions


def chain_targets(
    settings: Settings,
    *,
    chain: str | int | None = None,
    offline: bool = False,
    deployment_of: Callable[[Settings], Deployment] | None = None,
) -> list[ChainTarget]:
    """The configured chains to look on (`chain`: one, by network name or chain id), the
    settings' own network first; chains without a certificate contract are left out.

    Raises:
        ValueError: `chain` is not configured (the message lists the configured ones).
    """
    if chain is None:
        networks = sorted(settings.networks, key=lambda n: n.name != settings.network)
    else:
        wanted = str(chain)
        found = [n for n in settings.networks if wanted in (n.name, str(n.chain_id))]
        if not found:
            known = ", ".join(f"{n.name} ({n.chain_id})" for n in settings.networks)
            raise ValueError(f"unknown chain {wanted!r}: configured are {known}")
        networks = found
    targets = []
    for network in networks:
        own = settings if network.name == settings.network else settings.for_network(network.name)
        deployment = (deployment_of or _current_deployment)(own)
        if deployment.certificate is None:
            continue
        targets.append(
            ChainTarget(
                chain_id=network.chain_id,
                name=network.name,
                rpc_url=own.rpc_url,
                certificate=deployment.certificate,
                options=options_for(own, deployment, offline=offline),
            )
        )
    return targets


def _current_deployment(settings: Settings) -> Deployment:
    return current_deployment(settings.deployment_file)


def verify_on_chains(
    targets: list[ChainTarget], token_id: int, document: bytes | None = None
) -> Report:
    """Verify `token_id` on the first of `targets` whose contract has it (one target: that
    chain). The report names the chains searched; when no chain has the certificate it is the
    first chain's "not found" report.

    Raises:
        ValueError: no target to search (nothing deployed).
        requests.RequestException, OSError, Web3Exception: no chain could be reached.
    """
    if not targets:
        raise ValueError("no certificate contract is deployed on any configured chain")
    first: Report | None = None
    searched: list[int] = []
    unreachable: Exception | None = None
    for target in targets:
        try:
            report = verify_certificate(
                target.rpc_url, target.certificate, token_id, document, target.options
            )
        except (requests.RequestException, OSError, Web3Exception) as exc:
            if len(targets) == 1:
                raise
            unreachable = exc  # another chain may have it; said in the report below
            continue
        searched.append(target.chain_id)
        if report.found:
            report.searched = searched
            return report
        first = first or report
    if first is None:
        assert unreachable is not None
        raise unreachable
    first.searched = searched
    if len(targets) > 1:
        names = ", ".join(f"{t.name} ({t.chain_id})" for t in targets)
        first.steps[0].detail = f"no certificate {token_id} on any configured chain: {names}"
    return first


def options_for(
    settings: Settings, deployment: Deployment, *, offline: bool = False
) -> VerifyOptions:
    """The options of this deployment: its certificate contract is the one known, revocations
    are searched from its deploy block, the domain link as configured (never when `offline`)."""
    known = frozenset(a.lower() for a in (deployment.certificate,) if a)
    return VerifyOptions(
        known_contracts=known,
        from_block=deployment.deploy_block,
        domain_link=settings.domain_link and not offline,
        domain_link_url=settings.domain_link_url,
    )
