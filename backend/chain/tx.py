"""Unsigned transactions for the user's wallet to sign, encoded from the interface signatures."""

from __future__ import annotations

from dataclasses import dataclass

from eth_abi import encode
from eth_utils import keccak

from backend.chain.client import encode_call

PURCHASE = "purchase(uint256,address,uint256,address,bytes32,uint32)"
ACCESS_SOURCE = {"none": 0, "purchase": 1, "card": 2, "grant": 3}


@dataclass(frozen=True)
class UnsignedTx:
    """`to`, `data` (0x hex), `value` (wei) and `chainId`."""

    to: str
    data: str
    value: int
    chain_id: int


def _tx(to: str, chain_id: int, calldata: bytes, value: int = 0) -> UnsignedTx:
    return UnsignedTx(to=to, data="0x" + calldata.hex(), value=value, chain_id=chain_id)


def create_course(market: str, chain_id: int, title: str, refund_window: int) -> UnsignedTx:
    """`createCourse(string,uint32)`."""
    return _tx(
        market,
        chain_id,
        encode_call("createCourse(string,uint32)", ["string", "uint32"], [title, refund_window]),
    )


def profile_hash(name: str, domain: str) -> str:
    """`keccak256(abi.encode(name, domain))`, 0x-hex: the record `verifyProvider` is bound to."""
    return "0x" + keccak(encode(["string", "string"], [name, domain])).hex()


def set_provider_profile(certificate: str, chain_id: int, name: str, domain: str) -> UnsignedTx:
    """`setProviderProfile(string,string)` (ICourseCertificate)."""
    return _tx(
        certificate,
        chain_id,
        encode_call("setProviderProfile(string,string)", ["string", "string"], [name, domain]),
    )


def set_price(market: str, chain_id: int, course_id: int, token: str, price: int) -> UnsignedTx:
    """`setPrice(uint256,address,uint256)`."""
    return _tx(
        market,
        chain_id,
        encode_call(
            "setPrice(uint256,address,uint256)",
            ["uint256", "address", "uint256"],
            [course_id, token, price],
        ),
    )


def purchase(
    market: str,
    chain_id: int,
    *,
    course_id: int,
    token: str,
    max_amount: int,
    recipient: str,
    order_ref: str,
    quoted_window: int,
    native: bool,
) -> UnsignedTx:
    """`purchase(uint256,address,uint256,address,bytes32,uint32)`; sends the price for the native
    coin. `quoted_window` is the refund window the buyer was quoted: the market refuses the
    purchase if the course's window is shorter by the time it is mined."""
    return _tx(
        market,
        chain_id,
        encode_call(
            PURCHASE,
            ["uint256", "address", "uint256", "address", "bytes32", "uint32"],
            [
                course_id,
                token,
                max_amount,
                recipient,
                bytes.fromhex(order_ref[2:]),
                quoted_window,
            ],
        ),
        value=max_amount if native else 0,
    )


def approve(token: str, chain_id: int, spender: str, amount: int) -> UnsignedTx:
    """ERC-20 `approve(address,uint256)` (before an ERC-20 purchase)."""
    return _tx(
        token,
        chain_id,
        encode_call("approve(address,uint256)", ["address", "uint256"], [spender, amount]),
    )


def refund(
    market: str,
    chain_id: int,
    *,
    course_id: int,
    learner: str,
    payer: str,
    token: str,
    amount: int,
    fee: int,
) -> UnsignedTx:
    """`refund(uint256,address,address,address,uint256,uint256)`."""
    return _tx(
        market,
        chain_id,
        encode_call(
            "refund(uint256,address,address,address,uint256,uint256)",
            ["uint256", "address", "address", "address", "uint256", "uint256"],
            [course_id, learner, payer, token, amount, fee],
        ),
    )


def withdraw(market: str, chain_id: int, token: str) -> UnsignedTx:
    """`withdraw(address)`."""
    return _tx(market, chain_id, encode_call("withdraw(address)", ["address"], [token]))
