"""Certificates of every kind a verifier meets, on a running chain, and the providers' websites.

`build_world` issues them with the deployment's operator key (ISSUER and VERIFIER roles) and
fresh accounts: a verified provider whose website names its address, a stranger with a
look-alike course, a contract that is not the deployment's. `IssuerSites` serves the
providers' `/.well-known/tuition-issuer.json` files from 127.0.0.1 (the domain is the first path
segment: set `TUITION_DOMAIN_LINK_URL` to `sites.url_template`).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import HTTPProvider, Web3
from web3.contract import Contract

from backend.certificates.service import record_hash
from backend.chain.artifacts import load_abi
from backend.provider.profiles import profile_hash
from support.market import load_artifact, transact
from support.web import rpc

VERIFIED_NAME, VERIFIED_DOMAIN = "Verified Academy", "verified.academy"
COURSE_TITLE = "Applied Cryptography"


class IssuerSites:
    """Providers' websites on 127.0.0.1: `files[domain]` is the well-known file's body."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.redirects: dict[str, str] = {}  # domain -> Location
        files, redirects = self.files, self.redirects

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                domain, _, rest = self.path.lstrip("/").partition("/")
                if domain in redirects:
                    self.send_response(302)
                    self.send_header("Location", redirects[domain])
                    self.end_headers()
                    return
                body = files.get(domain) if rest == ".well-known/tuition-issuer.json" else None
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Access-Control-Allow-Origin", "*")
                self.end_headers()
                self.wfile.write(body or b"{}")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url_template(self) -> str:
        """`TUITION_DOMAIN_LINK_URL` for these sites."""
        return (
            f"http://127.0.0.1:{self.server.server_port}/{{domain}}/.well-known/tuition-issuer.json"
        )

    def publish(self, domain: str, *issuers: tuple[int, str]) -> None:
        """Make `domain` name `issuers` ((chain id, address) pairs)."""
        entries = [{"chainId": chain_id, "address": address} for chain_id, address in issuers]
        self.files[domain] = json.dumps({"issuers": entries}).encode()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass(frozen=True)
class Case:
    """One certificate to verify and what every surface must answer."""

    contract: str
    token_id: int
    verdict: str
    statuses: dict[str, str]  # step name -> passed / failed / not_checked
    document: bytes | None = None


@dataclass
class World:
    """The certificates of `build_world`, by case name."""

    cases: dict[str, Case] = field(default_factory=dict)
    provider: str = ""
    stranger: str = ""
    operator: str = ""


def _record(learner: str, course_id: int, title: str) -> dict[str, Any]:
    return {
        "version": 1,
        "course": {"id": course_id, "onchainId": course_id, "title": title},
        "learner": learner,
        "name": "Zoë Verifier-Tester",
        "grade": "completed",
        "completedAt": "2026-12-01T10:00:00Z",
        "salt": "0x" + Account.create().key.hex()[:64],
    }


def _funded(rpc_url: str) -> LocalAccount:
    account: LocalAccount = Account.create()
    rpc(rpc_url, "anvil_setBalance", [account.address, hex(10 * 10**18)])
    return account


def _statuses(exists: str, status: str, issuer: str, integrity: str, holder: str) -> dict[str, str]:
    return {
        "exists": exists,
        "status": status,
        "issuer": issuer,
        "integrity": integrity,
        "holder": holder,
    }


P, F, N = "passed", "failed", "not_checked"


def build_world(
    rpc_url: str, market_address: str, certificate_address: str, operator_key: str,
    sites: IssuerSites,
) -> World:  # fmt: skip
    """Issue one certificate of each kind on the deployment at `rpc_url`."""
    w3 = Web3(HTTPProvider(rpc_url))
    chain_id = w3.eth.chain_id
    operator = Account.from_key(operator_key)
    market = w3.eth.contract(address=market_address, abi=load_abi("CourseMarket"))
    certificate = w3.eth.contract(address=certificate_address, abi=load_abi("CourseCertificate"))
    provider, stranger = _funded(rpc_url), _funded(rpc_url)

    def course(owner: LocalAccount, on: Contract, title: str) -> int:
        receipt = transact(w3, on.functions.createCourse(title, 0), owner)
        return int(on.events.CourseCreated().process_receipt(receipt)[0]["args"]["courseId"])

    def issue(
        on_market: Contract, on_cert: Contract, by: LocalAccount, course_id: int, title: str,
        learner: LocalAccount | None = None,
    ) -> tuple[int, bytes, LocalAccount]:  # fmt: skip
        learner = learner or _funded(rpc_url)
        record = _record(learner.address, course_id, title)
        digest = bytes.fromhex(record_hash(record)[2:])
        transact(
            w3,
            on_market.functions.grantAccess(course_id, learner.address, 3, digest.ljust(32, b"\0")),
            by,
        )
        transact(w3, on_cert.functions.mint(learner.address, course_id, digest), by)
        token_id = int(on_cert.functions.tokenIdFor(learner.address, course_id).call())
        return token_id, json.dumps(record).encode(), learner

    # The verified provider: public record, the platform's verification, its website.
    transact(w3, certificate.functions.setProviderProfile(VERIFIED_NAME, VERIFIED_DOMAIN), provider)
    reviewed = bytes.fromhex(profile_hash(VERIFIED_NAME, VERIFIED_DOMAIN)[2:])
    transact(w3, certificate.functions.verifyProvider(provider.address, reviewed), operator)
    sites.publish(VERIFIED_DOMAIN, (chain_id, provider.address))
    real = course(provider, market, COURSE_TITLE)

    world = World(provider=provider.address, stranger=stranger.address, operator=operator.address)
    cases = world.cases

    valid, document, _ = issue(market, certificate, operator, real, COURSE_TITLE)
    cases["valid"] = Case(certificate_address, valid, "valid", _statuses(P, P, P, P, P), document)
    tampered = json.loads(document)
    tampered["grade"] = "distinction"
    cases["tampered document"] = Case(
        certificate_address, valid, "document_mismatch", _statuses(P, P, P, F, P),
        json.dumps(tampered).encode(),
    )  # fmt: skip

    revoked, _, _ = issue(market, certificate, operator, real, COURSE_TITLE)
    transact(w3, certificate.functions.revoke(revoked, 2), operator)  # academic misconduct
    cases["revoked"] = Case(certificate_address, revoked, "revoked", _statuses(P, F, P, N, P))

    removed, _, holder = issue(market, certificate, operator, real, COURSE_TITLE)
    transact(w3, certificate.functions.remove(removed), holder)
    cases["removed by holder"] = Case(
        certificate_address, removed, "removed", _statuses(P, F, P, N, F)
    )

    replaced, _, learner = issue(market, certificate, operator, real, COURSE_TITLE)
    corrected = _record(learner.address, real, COURSE_TITLE)
    transact(
        w3,
        certificate.functions.reissue(replaced, bytes.fromhex(record_hash(corrected)[2:])),
        operator,
    )
    cases["replaced"] = Case(certificate_address, replaced, "replaced", _statuses(P, F, P, N, P))

    # A stranger copies the title and the website of the verified provider; nobody vouches.
    transact(w3, certificate.functions.setProviderProfile(VERIFIED_NAME, VERIFIED_DOMAIN), stranger)
    fake = course(stranger, market, COURSE_TITLE)
    transact(w3, certificate.functions.setIssuer(stranger.address, True), stranger)
    transact(w3, market.functions.grantAccess(fake, stranger.address, 3, b"\x01" * 32), operator)
    transact(w3, certificate.functions.mint(stranger.address, fake, b"\x02" * 28), stranger)
    look_alike = int(certificate.functions.tokenIdFor(stranger.address, fake).call())
    cases["look-alike course"] = Case(
        certificate_address, look_alike, "unverified_issuer", _statuses(P, P, F, N, P)
    )

    # A provider that published a record the platform never verified.
    newcomer = _funded(rpc_url)
    transact(w3, certificate.functions.setProviderProfile("New School", "new.school"), newcomer)
    sites.publish("new.school", (chain_id, newcomer.address))
    new_course = course(newcomer, market, "Brand New Course")
    unverified, _, _ = issue(market, certificate, operator, new_course, "Brand New Course")
    cases["unverified issuer"] = Case(
        certificate_address, unverified, "unverified_issuer", _statuses(P, P, F, N, P)
    )

    cases["unknown token"] = Case(
        certificate_address, valid + 1, "not_found", _statuses(F, N, N, N, N)
    )

    # The same contracts, deployed by the stranger: not the deployment's.
    def deploy(name: str, *args: Any) -> Contract:
        abi, bytecode = load_artifact(name)
        receipt = transact(
            w3, w3.eth.contract(abi=abi, bytecode=bytecode).constructor(*args), stranger
        )
        return w3.eth.contract(address=receipt["contractAddress"], abi=abi)

    their_market = deploy("CourseMarket", stranger.address, stranger.address, 0, 0)
    their_cert = deploy("CourseCertificate", stranger.address, their_market.address)
    transact(
        w3,
        their_market.functions.grantRole(
            their_market.functions.OPERATOR_ROLE().call(), stranger.address
        ),
        stranger,
    )
    transact(
        w3,
        their_cert.functions.grantRole(their_cert.functions.ISSUER_ROLE().call(), stranger.address),
        stranger,
    )
    theirs = course(stranger, their_market, COURSE_TITLE)
    foreign, _, _ = issue(their_market, their_cert, stranger, theirs, COURSE_TITLE)
    cases["contract not ours"] = Case(
        their_cert.address, foreign, "unknown_contract", _statuses(F, N, N, N, N)
    )
    return world
