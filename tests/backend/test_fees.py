"""The platform fee's split: the contract's rounding (down, to the minor unit) on both rails."""

from __future__ import annotations

import pytest

from backend.payouts.fees import split


@pytest.mark.parametrize(
    ("gross", "bps", "fee"),
    [
        (0, 500, 0),
        (19, 500, 0),  # 0.95 of a cent: the provider keeps it
        (20, 500, 1),
        (4999, 750, 374),  # 374.925
        (99_999_999, 2000, 19_999_999),  # Stripe's largest amount at the contract's maximum fee
        (4900, 0, 0),
        (4900, 10_000, 4900),
    ],
)
def test_fee_rounds_down_like_the_market_contract(gross: int, bps: int, fee: int) -> None:
    result = split(gross, bps)
    assert result.fee == fee == gross * bps // 10_000
    assert result.net == gross - fee


@pytest.mark.parametrize(("gross", "bps"), [(-1, 500), (4900, -1), (4900, 10_001)])
def test_impossible_splits_are_refused(gross: int, bps: int) -> None:
    with pytest.raises(ValueError):
        split(gross, bps)
