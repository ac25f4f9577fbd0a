"""Constants and small helpers shared by the contract tests and the gas measurement."""

from __future__ import annotations

from typing import Any

from eth_abi import encode
from eth_utils import keccak

DAY = 86_400
ZERO = "0x0000000000000000000000000000000000000000"
FEE_BPS = 500
REFUND_WINDOW = 14 * DAY
NATIVE_PRICE = 5 * 10**16  # 0.05 ETH
ESN_PRICE = 25 * 10**18
USDC_PRICE = 20 * 10**6

# ICourseMarket.AccessSource
NONE, PURCHASE, CARD, GRANT = 0, 1, 2, 3


def order_ref(label: str) -> bytes:
    """A backend-style order reference: a 32-byte hash."""
    return keccak(text=label)


def fee_of(price: int, bps: int = FEE_BPS) -> int:
    """The platform fee the market takes, rounded down."""
    return price * bps // 10_000


def purchase_digest(payer: Any, token: Any, amount: int, fee: int) -> bytes:
    """Off-chain twin of CourseMarket.purchaseDigest: the first 21 bytes of the keccak."""
    encoded = encode(
        ["address", "address", "uint256", "uint256"], [str(payer), str(token), amount, fee]
    )
    return keccak(encoded)[:21]


def release_day(deadline: int) -> int:
    """The first day (since the epoch) that starts after `deadline`."""
    return deadline // DAY + 1


def next_day_at(chain: Any, seconds_into_day: int) -> int:
    """Move the chain to the next UTC day plus `seconds_into_day`; returns that timestamp."""
    target = (chain.pending_timestamp // DAY + 1) * DAY + seconds_into_day
    chain.mine(timestamp=target)
    return target


def new_course(market: Any, seller: Any, title: str, window: int) -> int:
    """Register a course from `seller`; returns its id (session fixtures may own lower ids)."""
    market.createCourse(title, window, sender=seller)
    return int(market.courseCount())


def buy_native(market: Any, course_id: int, buyer: Any, *, recipient: Any = ZERO, **kw) -> Any:
    """Buy `course_id` with the native coin at its current price."""
    price, _ = market.priceOf(course_id, ZERO)
    value = kw.pop("value", price)
    ref = kw.pop("ref", order_ref(f"{buyer}-{course_id}"))
    return market.purchase(course_id, ZERO, price, recipient, ref, 0, sender=buyer, value=value)


def buy_token(
    market: Any, course_id: int, token: Any, buyer: Any, *, recipient: Any = ZERO, **kw
) -> Any:
    """Approve the exact price and buy `course_id` with an ERC-20."""
    price, _ = market.priceOf(course_id, token)
    token.approve(market, price, sender=buyer)
    ref = kw.pop("ref", order_ref(f"{buyer}-{course_id}-{token}"))
    return market.purchase(course_id, token, price, recipient, ref, 0, sender=buyer)
