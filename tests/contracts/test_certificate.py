"""CourseCertificate: issuing, vouchers, soulbound behaviour, revocation and on-chain metadata."""

from __future__ import annotations

import base64
import datetime as dt
import json
import xml.etree.ElementTree as ET

import ape
import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak
from market_helpers import DAY, GRANT, ZERO, buy_native, fee_of, new_course, order_ref
from support.signing import VOUCHER_TYPES, sign_voucher

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
RECORD = keccak(text="record:alice:solidity")[:28]


def token_id(learner, course_id: int) -> int:
    return (course_id << 160) | int(str(learner), 16)


def voucher(certificate, signer, learner, course_id, chain, *, deadline=None, **domain):
    deadline = chain.pending_timestamp + DAY if deadline is None else deadline
    signature = sign_voucher(
        signer.private_key,
        certificate=domain.pop("verifying_contract", certificate.address),
        learner=learner.address,
        course_id=course_id,
        record_hash=RECORD,
        deadline=deadline,
        chain_id=domain.pop("chain_id", chain.chain_id),
        **domain,
    )
    return deadline, signature


def metadata(certificate, tid) -> dict:
    uri = certificate.tokenURI(tid)
    prefix = "data:application/json;base64,"
    assert uri.startswith(prefix)
    return json.loads(base64.b64decode(uri[len(prefix) :]))


def svg_of(meta) -> ET.Element:
    prefix = "data:image/svg+xml;base64,"
    assert meta["image"].startswith(prefix)
    return ET.fromstring(base64.b64decode(meta["image"][len(prefix) :]))


def attributes(meta) -> dict:
    return {a["trait_type"]: a["value"] for a in meta["attributes"]}


def enrol(market, operator, course_id, learner):
    """Give `learner` access to `course_id` the way an operator records a grant."""
    market.grantAccess(course_id, learner, GRANT, order_ref(f"grant:{learner}"), sender=operator)


@pytest.fixture(autouse=True)
def learner_has_access(market, operator, course_id, learner):
    """`learner` holds access to the course (certificates need it); `other` does not."""
    enrol(market, operator, course_id, learner)


# ---------------------------------------------------------------- minting


def test_mint(certificate, market, course_id, issuer, learner, provider, chain):
    tx = certificate.mint(learner, course_id, RECORD, sender=issuer)
    tid = token_id(learner, course_id)
    assert tx.return_value in (tid, None)

    [transfer] = tx.decode_logs(certificate.Transfer)
    assert (transfer.event_arguments["from"], transfer.to, transfer.tokenId) == (
        ZERO,
        learner.address,
        tid,
    )
    [locked] = tx.decode_logs(certificate.Locked)
    assert locked.tokenId == tid
    [minted] = tx.decode_logs(certificate.CertificateMinted)
    assert (minted.tokenId, minted.learner, minted.courseId) == (tid, learner.address, course_id)
    assert (minted.signer, minted.recordHash) == (issuer.address, RECORD)

    assert certificate.ownerOf(tid) == learner.address
    assert certificate.balanceOf(learner) == 1
    assert certificate.locked(tid)
    assert certificate.tokenIdFor(learner, course_id) == tid
    cert = certificate.verify(tid)
    assert cert.holder == learner.address
    assert cert.courseId == course_id
    assert cert.issuer == provider.address
    assert cert.issuedAt == chain.blocks.head.timestamp
    assert cert.recordHash == RECORD
    assert (cert.revoked, cert.revokedAt, cert.revokeReason) == (False, 0, 0)


def test_mint_validation(certificate, market, course_id, issuer, learner, other):
    with ape.reverts(certificate.NotIssuer, courseId=course_id, account=other.address):
        certificate.mint(learner, course_id, RECORD, sender=other)
    with ape.reverts(certificate.ZeroRecordHash):
        certificate.mint(learner, course_id, b"\x00" * 28, sender=issuer)
    with ape.reverts(market.UnknownCourse, courseId=999):
        certificate.mint(learner, 999, RECORD, sender=issuer)
    with ape.reverts(certificate.ERC721InvalidReceiver, receiver=ZERO):
        certificate.mint(ZERO, course_id, RECORD, sender=issuer)
    certificate.mint(learner, course_id, RECORD, sender=issuer)
    with ape.reverts(certificate.AlreadyCertified, learner=learner.address, courseId=course_id):
        certificate.mint(learner, course_id, RECORD, sender=issuer)


def test_provider_authorized_issuer(certificate, market, course_id, provider, learner, other):
    foreign = new_course(market, learner, "Someone else's course", DAY)
    assert not certificate.isIssuerFor(course_id, other)
    tx = certificate.setIssuer(other, True, sender=provider)
    [log] = tx.decode_logs(certificate.IssuerSet)
    assert log.event_arguments["provider"] == provider.address
    assert (log.issuer, log.allowed) == (other.address, True)
    assert certificate.isIssuerFor(course_id, other)
    assert certificate.isProviderIssuer(provider, other)
    assert not certificate.isIssuerFor(foreign, other)

    certificate.mint(learner, course_id, RECORD, sender=other)
    with ape.reverts(certificate.NotIssuer, courseId=foreign, account=other.address):
        certificate.mint(learner, foreign, RECORD, sender=other)

    certificate.setIssuer(other, False, sender=provider)
    with ape.reverts(certificate.NotIssuer):
        certificate.mint(provider, course_id, RECORD, sender=other)


def test_no_issuer_can_certify_a_learner_without_access(
    certificate, market, course_id, issuer, provider, other, accounts
):
    provider_issuer = accounts[8]
    certificate.setIssuer(provider_issuer, True, sender=provider)
    for key in (issuer, provider_issuer):
        with ape.reverts(certificate.NoCourseAccess, courseId=course_id, learner=other.address):
            certificate.mint(other, course_id, RECORD, sender=key)


def test_provider_cannot_certify_itself_without_buying(
    certificate, market, course_id, provider, chain
):
    certificate.setIssuer(provider, True, sender=provider)
    with ape.reverts(certificate.NoCourseAccess, courseId=course_id, learner=provider.address):
        certificate.mint(provider, course_id, RECORD, sender=provider)
    deadline, signature = voucher(certificate, provider, provider, course_id, chain)
    with ape.reverts(certificate.NoCourseAccess, courseId=course_id, learner=provider.address):
        certificate.claim(course_id, RECORD, deadline, signature, sender=provider)
    buy_native(market, course_id, provider)
    certificate.mint(provider, course_id, RECORD, sender=provider)
    assert certificate.verify(token_id(provider, course_id)).holder == provider.address


def test_voucher_cannot_be_claimed_without_access(
    certificate, course_id, issuer, provider, other, accounts, chain
):
    provider_issuer = accounts[8]
    certificate.setIssuer(provider_issuer, True, sender=provider)
    for signer in (issuer, provider_issuer):
        deadline, signature = voucher(certificate, signer, other, course_id, chain)
        with ape.reverts(certificate.NoCourseAccess, courseId=course_id, learner=other.address):
            certificate.claim(course_id, RECORD, deadline, signature, sender=other)


@pytest.mark.parametrize("rail", ["purchase", "card", "grant"])
def test_access_from_any_rail_allows_certification(
    certificate, market, operator, course_id, issuer, other, rail
):
    if rail == "purchase":
        buy_native(market, course_id, other)
    else:
        source = {"card": 2, "grant": GRANT}[rail]
        market.grantAccess(course_id, other, source, order_ref(rail), sender=operator)
    certificate.mint(other, course_id, RECORD, sender=issuer)
    assert certificate.ownerOf(token_id(other, course_id)) == other.address


def test_access_lost_before_minting_blocks_certification(
    certificate, market, operator, course_id, issuer, provider, other
):
    buy_native(market, course_id, other)
    price, _ = market.priceOf(course_id, ZERO)
    market.refund(course_id, other, other, ZERO, price, fee_of(price), sender=provider)
    with ape.reverts(certificate.NoCourseAccess, courseId=course_id, learner=other.address):
        certificate.mint(other, course_id, RECORD, sender=issuer)
    market.grantAccess(course_id, other, 2, order_ref("card"), sender=operator)
    market.revokeAccess(course_id, other, order_ref("card refund"), sender=operator)
    with ape.reverts(certificate.NoCourseAccess, courseId=course_id, learner=other.address):
        certificate.mint(other, course_id, RECORD, sender=issuer)


def test_issuer_role_is_admin_granted(certificate, owner, other):
    role = certificate.ISSUER_ROLE()
    assert role == keccak(text="ISSUER_ROLE")
    with ape.reverts(certificate.AccessControlUnauthorizedAccount):
        certificate.grantRole(role, other, sender=other)
    certificate.grantRole(role, other, sender=owner)
    assert certificate.hasRole(role, other)


def test_unknown_course_issuer_query_reverts(certificate, market, issuer):
    with ape.reverts(market.UnknownCourse, courseId=999):
        certificate.isIssuerFor(999, issuer)


# ---------------------------------------------------------------- vouchers


def test_claim_with_voucher(certificate, course_id, issuer, learner, chain):
    deadline, signature = voucher(certificate, issuer, learner, course_id, chain)
    tx = certificate.claim(course_id, RECORD, deadline, signature, sender=learner)
    [minted] = tx.decode_logs(certificate.CertificateMinted)
    assert (minted.learner, minted.signer) == (learner.address, issuer.address)
    assert certificate.ownerOf(token_id(learner, course_id)) == learner.address
    # Replay: same voucher, same learner.
    with ape.reverts(certificate.AlreadyCertified, learner=learner.address, courseId=course_id):
        certificate.claim(course_id, RECORD, deadline, signature, sender=learner)


def test_voucher_digest_matches_eip712(certificate, market, course_id, learner, chain):
    deadline = 1_900_000_000
    domain = {
        "name": "Tuition Certificate",
        "version": "1",
        "chainId": chain.chain_id,
        "verifyingContract": certificate.address,
    }
    message = {
        "learner": learner.address,
        "courseId": course_id,
        "recordHash": RECORD,
        "deadline": deadline,
    }
    signable = encode_typed_data(domain, VOUCHER_TYPES, message)
    expected = keccak(b"\x19\x01" + signable.header + signable.body)
    assert certificate.voucherDigest(learner, course_id, RECORD, deadline) == expected
    assert certificate.VOUCHER_TYPEHASH() == keccak(
        text="Voucher(address learner,uint256 courseId,bytes28 recordHash,uint256 deadline)"
    )
    assert certificate.market() == market.address
    fields = certificate.eip712Domain()
    assert (fields.name, fields.version, fields.chainId) == (
        "Tuition Certificate",
        "1",
        chain.chain_id,
    )


def test_voucher_expiry(certificate, course_id, issuer, learner, chain):
    deadline = chain.pending_timestamp + 100
    _, signature = voucher(certificate, issuer, learner, course_id, chain, deadline=deadline)
    chain.pending_timestamp = deadline + 1
    with ape.reverts(certificate.VoucherExpired, deadline=deadline):
        certificate.claim(course_id, RECORD, deadline, signature, sender=learner)


def test_voucher_valid_at_deadline(certificate, course_id, issuer, learner, chain):
    deadline = chain.pending_timestamp + 100
    _, signature = voucher(certificate, issuer, learner, course_id, chain, deadline=deadline)
    chain.pending_timestamp = deadline
    certificate.claim(course_id, RECORD, deadline, signature, sender=learner)
    assert chain.blocks.head.timestamp == deadline
    assert certificate.ownerOf(token_id(learner, course_id)) == learner.address


def test_voucher_from_non_issuer(certificate, course_id, other, learner, chain):
    deadline, signature = voucher(certificate, other, learner, course_id, chain)
    with ape.reverts(certificate.NotIssuer, courseId=course_id, account=other.address):
        certificate.claim(course_id, RECORD, deadline, signature, sender=learner)


def test_voucher_from_provider_issuer(certificate, course_id, provider, other, learner, chain):
    certificate.setIssuer(other, True, sender=provider)
    deadline, signature = voucher(certificate, other, learner, course_id, chain)
    tx = certificate.claim(course_id, RECORD, deadline, signature, sender=learner)
    assert tx.decode_logs(certificate.CertificateMinted)[0].signer == other.address


def test_voucher_bound_to_learner_and_fields(certificate, course_id, issuer, learner, other, chain):
    deadline, signature = voucher(certificate, issuer, learner, course_id, chain)
    # Anyone else presenting it recovers a different (random) signer.
    with ape.reverts(certificate.NotIssuer):
        certificate.claim(course_id, RECORD, deadline, signature, sender=other)
    with ape.reverts(certificate.NotIssuer):
        certificate.claim(course_id, RECORD, deadline + 1, signature, sender=learner)
    with ape.reverts(certificate.NotIssuer):
        certificate.claim(course_id, keccak(b"x")[:28], deadline, signature, sender=learner)


@pytest.mark.parametrize(
    "domain",
    [
        {"chain_id": 1},
        {"verifying_contract": "0x000000000000000000000000000000000000dEaD"},
        {"name": "Another App"},
        {"version": "2"},
    ],
)
def test_voucher_for_another_domain_is_rejected(
    certificate, course_id, issuer, learner, chain, domain
):
    deadline, signature = voucher(certificate, issuer, learner, course_id, chain, **domain)
    with ape.reverts(certificate.NotIssuer):
        certificate.claim(course_id, RECORD, deadline, signature, sender=learner)


def test_malleable_signature_is_rejected(certificate, course_id, issuer, learner, chain):
    deadline, signature = voucher(certificate, issuer, learner, course_id, chain)
    r, s, v = signature[:32], int.from_bytes(signature[32:64], "big"), signature[64]
    high_s = SECP256K1_N - s
    flipped = r + high_s.to_bytes(32, "big") + bytes([55 - v])  # 27 <-> 28
    with ape.reverts(certificate.ECDSAInvalidSignatureS, s=high_s.to_bytes(32, "big")):
        certificate.claim(course_id, RECORD, deadline, flipped, sender=learner)
    with ape.reverts(certificate.ECDSAInvalidSignatureLength, length=64):
        certificate.claim(course_id, RECORD, deadline, signature[:64], sender=learner)


def test_zero_record_hash_voucher(certificate, course_id, issuer, learner, chain):
    deadline = chain.pending_timestamp + DAY
    signature = sign_voucher(
        issuer.private_key,
        certificate=certificate.address,
        learner=learner.address,
        course_id=course_id,
        record_hash=b"\x00" * 28,
        deadline=deadline,
        chain_id=chain.chain_id,
    )
    with ape.reverts(certificate.ZeroRecordHash):
        certificate.claim(course_id, b"\x00" * 28, deadline, signature, sender=learner)


# ---------------------------------------------------------------- soulbound


def test_soulbound(certificate, course_id, issuer, learner, other):
    certificate.mint(learner, course_id, RECORD, sender=issuer)
    tid = token_id(learner, course_id)
    with ape.reverts(certificate.Soulbound, tokenId=tid):
        certificate.transferFrom(learner, other, tid, sender=learner)
    with ape.reverts(certificate.Soulbound, tokenId=tid):
        certificate.safeTransferFrom(learner, other, tid, sender=learner)
    with ape.reverts(certificate.Soulbound, tokenId=tid):
        certificate.approve(other, tid, sender=learner)
    with ape.reverts(certificate.Soulbound, tokenId=0):
        certificate.setApprovalForAll(other, True, sender=learner)
    assert certificate.ownerOf(tid) == learner.address
    assert certificate.getApproved(tid) == ZERO
    assert not certificate.isApprovedForAll(learner, other)


def test_locked_unknown_token(certificate, learner):
    with ape.reverts(certificate.UnknownCertificate, tokenId=token_id(learner, 1)):
        certificate.locked(token_id(learner, 1))


def test_supports_interface(certificate):
    for interface_id in ("0xb45a3c0e", "0x80ac58cd", "0x5b5e139f", "0x7965db0b", "0x01ffc9a7"):
        assert certificate.supportsInterface(interface_id), interface_id
    assert not certificate.supportsInterface("0xffffffff")


# ---------------------------------------------------------------- revocation


def test_revoke(certificate, course_id, issuer, learner, chain):
    certificate.mint(learner, course_id, RECORD, sender=issuer)
    tid = token_id(learner, course_id)
    tx = certificate.revoke(tid, 2, sender=issuer)
    [log] = tx.decode_logs(certificate.CertificateRevoked)
    assert (log.tokenId, log.reason, log.by) == (tid, 2, issuer.address)
    cert = certificate.verify(tid)
    assert (cert.revoked, cert.revokedAt, cert.revokeReason) == (
        True,
        chain.blocks.head.timestamp,
        2,
    )
    assert cert.holder == learner.address  # revoked, not gone
    with ape.reverts(certificate.AlreadyRevoked, tokenId=tid):
        certificate.revoke(tid, 1, sender=issuer)
    meta = metadata(certificate, tid)
    assert attributes(meta)["Status"] == "Revoked"
    assert "REVOKED" in ET.tostring(svg_of(meta), encoding="unicode")


def test_revoke_validation(certificate, course_id, issuer, provider, learner, other):
    tid = token_id(learner, course_id)
    with ape.reverts(certificate.UnknownCertificate, tokenId=tid):
        certificate.revoke(tid, 1, sender=issuer)
    certificate.mint(learner, course_id, RECORD, sender=issuer)
    with ape.reverts(certificate.NotIssuer, courseId=course_id, account=other.address):
        certificate.revoke(tid, 1, sender=other)
    certificate.setIssuer(other, True, sender=provider)
    certificate.revoke(tid, 4, sender=other)


def test_verify_unknown(certificate, learner):
    with ape.reverts(certificate.UnknownCertificate, tokenId=token_id(learner, 1)):
        certificate.verify(token_id(learner, 1))


# ---------------------------------------------------------------- metadata


def test_token_uri(certificate, course_id, issuer, provider, learner, chain):
    certificate.mint(learner, course_id, RECORD, sender=issuer)
    tid = token_id(learner, course_id)
    meta = metadata(certificate, tid)
    assert "Solidity from Zero" in meta["name"]
    assert meta["description"]
    attrs = attributes(meta)
    issued = dt.datetime.fromtimestamp(chain.blocks.head.timestamp, dt.UTC).date().isoformat()
    assert attrs == {
        "Course": "Solidity from Zero",
        "Course ID": course_id,
        "Learner": learner.address,
        "Issuer": provider.address,
        "Issued": issued,
        "Status": "Valid",
        "Record hash": "0x" + RECORD.hex(),
    }
    text = "".join(svg_of(meta).itertext())
    for expected in ("Solidity from Zero", learner.address, issued, "VALID"):
        assert expected in text
    assert "REVOKED" not in text


def test_token_uri_unknown(certificate, learner):
    with ape.reverts(certificate.ERC721NonexistentToken):
        certificate.tokenURI(token_id(learner, 1))


def test_hostile_title_is_escaped(certificate, market, operator, issuer, learner):
    title = 'R&D <script>alert("x")</script> it\'s \\ backslash ünï 🎓'
    hostile = new_course(market, learner, title, DAY)
    enrol(market, operator, hostile, learner)
    certificate.mint(learner, hostile, RECORD, sender=issuer)
    meta = metadata(certificate, token_id(learner, hostile))  # parses: JSON escaping works
    assert attributes(meta)["Course"] == title
    svg = svg_of(meta)  # parses: XML escaping works
    texts = ["".join(node.itertext()) for node in svg.iter("{http://www.w3.org/2000/svg}text")]
    assert title in texts
    assert not list(svg.iter("{http://www.w3.org/2000/svg}script"))


@pytest.mark.parametrize(
    "when",
    [
        dt.datetime(2028, 2, 29, 23, 59, 59, tzinfo=dt.UTC),
        dt.datetime(2030, 12, 31, 12, 0, 0, tzinfo=dt.UTC),
        dt.datetime(2100, 3, 1, 0, 0, 0, tzinfo=dt.UTC),
    ],
)
def test_issue_date_is_civil_date(certificate, course_id, issuer, learner, chain, when):
    chain.pending_timestamp = int(when.timestamp())
    certificate.mint(learner, course_id, RECORD, sender=issuer)
    assert attributes(metadata(certificate, token_id(learner, course_id)))["Issued"] == (
        when.date().isoformat()
    )


def test_account_signing_helper_roundtrip(certificate, course_id, issuer, learner, chain):
    deadline, signature = voucher(certificate, issuer, learner, course_id, chain)
    digest = certificate.voucherDigest(learner, course_id, RECORD, deadline)
    assert Account._recover_hash(digest, signature=signature) == issuer.address
