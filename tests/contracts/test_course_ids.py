"""Course ids are bounded: ids of 2**96 and more would alias smaller ones in packed keys."""

from __future__ import annotations

import ape
import pytest
from market_helpers import CARD, NATIVE_PRICE, ZERO, buy_native, order_ref

ALIAS = 2**96  # `_key(ALIAS + c, a) == _key(c, a)` without the bound


@pytest.fixture
def aliased(course_id: int) -> int:
    """An id that shifts onto `course_id`'s storage keys."""
    return course_id + ALIAS


def test_largest_id_is_merely_unknown(market, certificate, learner):
    largest = 2**96 - 1
    with ape.reverts(market.UnknownCourse, courseId=largest):
        market.courseProvider(largest)
    assert not market.hasAccess(largest, learner)


def test_certificates_take_course_ids_below_2_64(certificate, learner):
    """The certificate's token id packs a 32-bit generation above a 64-bit course id."""
    largest = 2**64 - 1
    assert certificate.tokenIdFor(learner, largest) == (largest << 160) | int(learner.address, 16)
    with ape.reverts(certificate.InvalidCourseId, courseId=2**64):
        certificate.tokenIdFor(learner, 2**64)


def test_aliased_views_revert(market, certificate, course_id, aliased, learner, esn):
    buy_native(market, course_id, learner)
    assert market.hasAccess(course_id, learner)
    for call in (
        lambda: market.hasAccess(aliased, learner),
        lambda: market.accessOf(aliased, learner),
        lambda: market.priceOf(aliased, ZERO),
        lambda: market.priceOf(aliased, esn),
        lambda: market.course(aliased),
        lambda: market.courseProvider(aliased),
        lambda: market.courseTitle(aliased),
    ):
        with ape.reverts(market.InvalidCourseId, courseId=aliased):
            call()
    for call in (
        lambda: certificate.tokenIdFor(learner, aliased),
        lambda: certificate.isIssuerFor(aliased, learner),
    ):
        with ape.reverts(certificate.InvalidCourseId, courseId=aliased):
            call()


def test_aliased_catalog_calls_revert(market, course_id, aliased, provider, esn):
    for call in (
        lambda: market.setPrice(aliased, ZERO, 1, sender=provider),
        lambda: market.setPrice(aliased, esn, 1, sender=provider),
        lambda: market.removePrice(aliased, esn, sender=provider),
        lambda: market.setListed(aliased, False, sender=provider),
        lambda: market.setRefundWindow(aliased, 0, sender=provider),
    ):
        with ape.reverts(market.InvalidCourseId, courseId=aliased):
            call()
    assert market.priceOf(course_id, ZERO) == (NATIVE_PRICE, True)


def test_aliased_purchases_and_access_calls_revert(
    market, course_id, aliased, learner, other, operator, provider, esn
):
    buy_native(market, course_id, learner)
    ref = order_ref("alias")
    for call in (
        lambda: market.purchase(
            aliased, ZERO, NATIVE_PRICE, ZERO, ref, 0, sender=other, value=NATIVE_PRICE
        ),
        lambda: market.purchaseWithPermit(
            aliased, esn, 1, ZERO, ref, 0, 0, 27, b"\x00" * 32, b"\x00" * 32, sender=other
        ),
        lambda: market.refund(aliased, learner, learner, ZERO, NATIVE_PRICE, 0, sender=provider),
        lambda: market.grantAccess(aliased, other, CARD, ref, sender=operator),
        lambda: market.revokeAccess(aliased, learner, ref, sender=operator),
    ):
        with ape.reverts(market.InvalidCourseId, courseId=aliased):
            call()
    assert market.hasAccess(course_id, learner)


def test_aliased_certificate_calls_revert(market, certificate, course_id, aliased, issuer, learner):
    buy_native(market, course_id, learner)
    with ape.reverts(certificate.InvalidCourseId, courseId=aliased):
        certificate.mint(learner, aliased, b"\x01" * 28, sender=issuer)
    with ape.reverts(certificate.InvalidCourseId, courseId=aliased):
        certificate.claim(aliased, b"\x01" * 28, 2**40, b"\x00" * 65, sender=learner)
