"""CourseCertificate after issue: the holder's removal, corrections (reissue), and the provider
records the platform verifies."""

from __future__ import annotations

import ape
import pytest
from eth_abi import encode
from eth_utils import keccak
from market_helpers import GRANT, ZERO, order_ref

RECORD = keccak(text="record:alice:solidity")[:28]
FIXED = keccak(text="record:alice:solidity:corrected")[:28]
GENERATION = 1 << 224
CORRECTED = 7


def pair_id(learner, course_id: int) -> int:
    return (course_id << 160) | int(str(learner), 16)


def profile_hash(name: str, domain: str) -> bytes:
    return keccak(encode(["string", "string"], [name, domain]))


@pytest.fixture(autouse=True)
def learner_has_access(market, operator, course_id, learner):
    market.grantAccess(course_id, learner, GRANT, order_ref(f"grant:{learner}"), sender=operator)


@pytest.fixture
def minted(certificate, course_id, issuer, learner) -> int:
    """`learner`'s first certificate of the course."""
    certificate.mint(learner, course_id, RECORD, sender=issuer)
    return pair_id(learner, course_id)


# ---------------------------------------------------------------- removal by the holder


def test_holder_removes_its_certificate(certificate, minted, learner):
    tx = certificate.remove(minted, sender=learner)
    [removed] = tx.decode_logs(certificate.CertificateRemoved)
    assert (removed.tokenId, removed.holder) == (minted, learner.address)
    [transfer] = tx.decode_logs(certificate.Transfer)
    assert (transfer["from"], transfer.to, transfer.tokenId) == (learner.address, ZERO, minted)
    assert certificate.balanceOf(learner) == 0
    cert = certificate.verify(minted)  # still verifiable, as removed
    assert (cert.holder, cert.removed, cert.revoked) == (learner.address, True, False)
    with ape.reverts(certificate.ERC721NonexistentToken, tokenId=minted):
        certificate.ownerOf(minted)
    with ape.reverts(certificate.UnknownCertificate, tokenId=minted):
        certificate.locked(minted)
    with ape.reverts(certificate.ERC721NonexistentToken, tokenId=minted):
        certificate.tokenURI(minted)


def test_nobody_else_removes_a_certificate(
    certificate, minted, learner, other, issuer, provider, owner, verifier
):
    for intruder in (other, issuer, provider, owner, verifier):
        with ape.reverts(certificate.NotHolder, tokenId=minted, account=intruder.address):
            certificate.remove(minted, sender=intruder)
    certificate.remove(minted, sender=learner)
    with ape.reverts(certificate.NotHolder, tokenId=minted, account=learner.address):
        certificate.remove(minted, sender=learner)


def test_live_certificates_stay_locked_and_untransferable(certificate, minted, learner, other):
    assert certificate.locked(minted)
    with ape.reverts(certificate.Soulbound, tokenId=minted):
        certificate.transferFrom(learner, other, minted, sender=learner)


def test_a_removed_valid_certificate_can_be_issued_again_as_the_next_generation(
    certificate, minted, course_id, issuer, learner
):
    certificate.remove(minted, sender=learner)
    tx = certificate.mint(learner, course_id, RECORD, sender=issuer)
    [log] = tx.decode_logs(certificate.CertificateMinted)
    assert log.tokenId == GENERATION | minted
    assert certificate.tokenIdFor(learner, course_id) == GENERATION | minted
    assert certificate.ownerOf(GENERATION | minted) == learner.address
    assert certificate.verify(minted).removed  # the removed one keeps its own id and history
    with ape.reverts(certificate.AlreadyCertified, learner=learner.address, courseId=course_id):
        certificate.mint(learner, course_id, RECORD, sender=issuer)


def test_a_revoked_certificate_is_never_issued_again_by_mint_even_after_removal(
    certificate, minted, course_id, issuer, learner
):
    certificate.revoke(minted, 2, sender=issuer)
    with ape.reverts(certificate.AlreadyCertified, learner=learner.address, courseId=course_id):
        certificate.mint(learner, course_id, RECORD, sender=issuer)
    certificate.remove(minted, sender=learner)
    with ape.reverts(certificate.AlreadyCertified, learner=learner.address, courseId=course_id):
        certificate.mint(learner, course_id, RECORD, sender=issuer)
    cert = certificate.verify(minted)
    assert (cert.revoked, cert.revokeReason, cert.removed) == (True, 2, True)


def test_a_removed_certificate_can_still_be_revoked(certificate, minted, issuer, learner):
    certificate.remove(minted, sender=learner)
    certificate.revoke(minted, 2, sender=issuer)
    assert certificate.verify(minted).revoked


# ---------------------------------------------------------------- corrections


def test_reissue_revokes_as_corrected_and_links_the_replacement(
    certificate, minted, course_id, issuer, learner, chain
):
    tx = certificate.reissue(minted, FIXED, sender=issuer)
    new_id = GENERATION | minted
    [revoked] = tx.decode_logs(certificate.CertificateRevoked)
    assert (revoked.tokenId, revoked.reason, revoked.by) == (minted, CORRECTED, issuer.address)
    [replaced] = tx.decode_logs(certificate.CertificateReplaced)
    assert (replaced.tokenId, replaced.newTokenId) == (minted, new_id)
    [issued] = tx.decode_logs(certificate.CertificateMinted)
    assert (issued.tokenId, issued.learner, issued.recordHash) == (new_id, learner.address, FIXED)
    old, new = certificate.verify(minted), certificate.verify(new_id)
    assert (old.revoked, old.revokeReason, old.replacedBy) == (True, CORRECTED, new_id)
    assert (new.revoked, new.replacedBy, new.recordHash, new.courseId) == (
        False,
        0,
        FIXED,
        course_id,
    )
    assert new.issuedAt == chain.blocks.head.timestamp
    assert certificate.tokenIdFor(learner, course_id) == new_id
    # One live certificate per pair: the old one stays with its holder, revoked.
    assert certificate.ownerOf(minted) == learner.address
    with ape.reverts(certificate.AlreadyCertified, learner=learner.address, courseId=course_id):
        certificate.mint(learner, course_id, RECORD, sender=issuer)


def test_corrections_chain_and_only_the_current_certificate_is_corrected(
    certificate, minted, issuer
):
    certificate.reissue(minted, FIXED, sender=issuer)
    second = GENERATION | minted
    with ape.reverts(certificate.NotCurrentCertificate, tokenId=minted):
        certificate.reissue(minted, FIXED, sender=issuer)
    certificate.reissue(second, RECORD, sender=issuer)
    assert certificate.verify(second).replacedBy == 2 * GENERATION | minted


def test_reissue_is_for_the_course_issuers_only(
    certificate, minted, issuer, provider, other, learner
):
    for intruder in (other, learner):
        with ape.reverts(certificate.NotIssuer, courseId=minted >> 160, account=intruder.address):
            certificate.reissue(minted, FIXED, sender=intruder)
    certificate.setIssuer(other, True, sender=provider)
    certificate.reissue(minted, FIXED, sender=other)


def test_reissue_validation(certificate, minted, market, operator, course_id, issuer, learner):
    unknown = pair_id(issuer, course_id)
    with ape.reverts(certificate.UnknownCertificate, tokenId=unknown):
        certificate.reissue(unknown, FIXED, sender=issuer)
    with ape.reverts(certificate.ZeroRecordHash):
        certificate.reissue(minted, b"\x00" * 28, sender=issuer)
    market.revokeAccess(course_id, learner, order_ref(f"grant:{learner}"), sender=operator)
    with ape.reverts(certificate.NoCourseAccess, courseId=course_id, learner=learner.address):
        certificate.reissue(minted, FIXED, sender=issuer)


def test_a_removed_certificate_is_not_reissued(certificate, minted, issuer, learner):
    certificate.remove(minted, sender=learner)
    with ape.reverts(certificate.CertificateIsRemoved, tokenId=minted):
        certificate.reissue(minted, FIXED, sender=issuer)


def test_reissue_after_another_revocation_keeps_its_reason(certificate, minted, issuer):
    certificate.revoke(minted, 5, sender=issuer)
    tx = certificate.reissue(minted, FIXED, sender=issuer)
    assert not tx.decode_logs(certificate.CertificateRevoked)
    cert = certificate.verify(minted)
    assert (cert.revokeReason, cert.replacedBy) == (5, GENERATION | minted)


def test_corrected_is_written_by_reissue_only(certificate, minted, issuer):
    with ape.reverts(certificate.ReservedReason, reason=CORRECTED):
        certificate.revoke(minted, CORRECTED, sender=issuer)


# ---------------------------------------------------------------- provider records


def test_provider_sets_its_record_unverified(certificate, provider):
    tx = certificate.setProviderProfile("Solidity School", "solidity.school", sender=provider)
    [log] = tx.decode_logs(certificate.ProviderProfileSet)
    assert (log["provider"], log.name, log.domain) == (
        provider.address,
        "Solidity School",
        "solidity.school",
    )
    record = certificate.providerRecord(provider)
    assert (record.name, record.domain, record.verified, record.verifiedAt) == (
        "Solidity School",
        "solidity.school",
        False,
        0,
    )


@pytest.mark.parametrize(
    "name", ["", "x" * 65, "Tab\tSchool", "Bell\x07", "C1 \u0085", "Non-char \ufffe", "Del\x7f"]
)
def test_provider_names_must_be_printable(certificate, provider, name):
    with ape.reverts(certificate.InvalidProviderName):
        certificate.setProviderProfile(name, "school.example", sender=provider)


@pytest.mark.parametrize(
    "domain",
    [
        "",
        "localhost",
        "School.example",
        "-school.example",
        "school-.example",
        "school..example",
        ".school.example",
        "school.example.",
        "sch ool.example",
        "schööl.example",
        "a" * 64 + ".example",
        ("a" * 63 + ".") * 4 + "example",
    ],
)
def test_domains_must_be_lowercase_host_names(certificate, provider, domain):
    with ape.reverts(certificate.InvalidDomain):
        certificate.setProviderProfile("School", domain, sender=provider)


@pytest.mark.parametrize("domain", ["a.b", "x-1.example", "learn.solidity.school"])
def test_host_names_are_accepted(certificate, provider, domain):
    certificate.setProviderProfile("School", domain, sender=provider)
    assert certificate.providerRecord(provider).domain == domain


def test_the_platform_verifies_the_record_it_reviewed(
    certificate, minted, provider, verifier, chain
):
    certificate.setProviderProfile("Solidity School", "solidity.school", sender=provider)
    reviewed = profile_hash("Solidity School", "solidity.school")
    tx = certificate.verifyProvider(provider, reviewed, sender=verifier)
    [log] = tx.decode_logs(certificate.ProviderVerificationSet)
    assert (log["provider"], log.verified, log.profileHash, log.by) == (
        provider.address,
        True,
        reviewed,
        verifier.address,
    )
    record = certificate.providerRecord(provider)
    assert (record.verified, record.verifiedAt, record.verifiedBy) == (
        True,
        chain.blocks.head.timestamp,
        verifier.address,
    )
    # The verifier's walk: certificate -> course -> provider -> record.
    cert = certificate.verify(minted)
    assert (cert.issuer, cert.issuerVerified) == (provider.address, True)


def test_a_record_changed_after_review_is_not_verified(certificate, provider, verifier):
    certificate.setProviderProfile("Solidity School", "solidity.school", sender=provider)
    reviewed = profile_hash("Solidity School", "solidity.school")
    certificate.setProviderProfile("MIT", "mit.edu", sender=provider)  # front-runs the review
    with ape.reverts(
        certificate.ProfileMismatch,
        provider=provider.address,
        expected=reviewed,
        actual=profile_hash("MIT", "mit.edu"),
    ):
        certificate.verifyProvider(provider, reviewed, sender=verifier)


def test_a_provider_without_a_record_is_not_verified(certificate, provider, verifier):
    with ape.reverts(certificate.ProfileMismatch, provider=provider.address):
        certificate.verifyProvider(provider, b"\x00" * 32, sender=verifier)


def test_renaming_drops_the_verification(certificate, minted, provider, verifier):
    certificate.setProviderProfile("Solidity School", "solidity.school", sender=provider)
    certificate.verifyProvider(
        provider, profile_hash("Solidity School", "solidity.school"), sender=verifier
    )
    tx = certificate.setProviderProfile("Harvard", "solidity.school", sender=provider)
    [log] = tx.decode_logs(certificate.ProviderVerificationSet)
    assert (log.verified, log.by) == (False, provider.address)
    record = certificate.providerRecord(provider)
    assert (record.verified, record.verifiedAt, record.verifiedBy) == (False, 0, ZERO)
    assert not certificate.verify(minted).issuerVerified


def test_the_platform_withdraws_a_verification(certificate, provider, verifier):
    certificate.setProviderProfile("Solidity School", "solidity.school", sender=provider)
    reviewed = profile_hash("Solidity School", "solidity.school")
    certificate.verifyProvider(provider, reviewed, sender=verifier)
    tx = certificate.unverifyProvider(provider, sender=verifier)
    [log] = tx.decode_logs(certificate.ProviderVerificationSet)
    assert (log.verified, log.profileHash, log.by) == (False, reviewed, verifier.address)
    assert not certificate.providerRecord(provider).verified


def test_only_verifiers_vouch_for_providers(certificate, provider, issuer, owner, other, verifier):
    certificate.setProviderProfile("Solidity School", "solidity.school", sender=provider)
    reviewed = profile_hash("Solidity School", "solidity.school")
    role = certificate.VERIFIER_ROLE()
    for intruder in (provider, issuer, owner, other):
        with ape.reverts(
            certificate.AccessControlUnauthorizedAccount,
            account=intruder.address,
            neededRole=role,
        ):
            certificate.verifyProvider(provider, reviewed, sender=intruder)
        with ape.reverts(
            certificate.AccessControlUnauthorizedAccount,
            account=intruder.address,
            neededRole=role,
        ):
            certificate.unverifyProvider(provider, sender=intruder)
    certificate.verifyProvider(provider, reviewed, sender=verifier)
