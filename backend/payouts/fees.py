"""The platform fee, one rule for both rails.

The fee in basis points is the market contract's (`CourseMarket.feeBps()`, changed only by its
admin): card sales read it from the chain when the checkout starts, so the card rail can never
charge a different fee than the on-chain one. The split rounds like the contract does
(`fee = price * feeBps / 10_000`, rounded down): the platform's share is rounded down, the
provider's net rounded up, to the minor unit (cents; whole yen for zero-decimal currencies).
"""

from __future__ import annotations

from dataclasses import dataclass

BPS = 10_000


@dataclass(frozen=True)
class Split:
    """A sale's gross amount divided between the provider and the platform (minor units)."""

    gross: int
    fee: int

    @property
    def net(self) -> int:
        """What the provider receives."""
        return self.gross - self.fee


def split(gross: int, fee_bps: int) -> Split:
    """The platform fee of a `gross` sale at `fee_bps` basis points, rounded down.

    Raises:
        ValueError: a negative amount, or a fee outside 0..10000 basis points.
    """
    if gross < 0:
        raise ValueError(f"amount must not be negative, not {gross}")
    if not 0 <= fee_bps <= BPS:
        raise ValueError(f"fee must be 0..{BPS} basis points, not {fee_bps}")
    return Split(gross=gross, fee=gross * fee_bps // BPS)
