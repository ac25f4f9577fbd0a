"""The API's read access to the chain: a small interface tests replace with a fake.

Everything is an `eth_call` encoded with eth-abi from the function signatures of
contracts/interfaces (so the API does not depend on the ABI files being present).
"""

from __future__ import annotations

import logging
from typing import Protocol

from eth_abi import decode, encode
from eth_utils import function_signature_to_4byte_selector
from web3 import AsyncHTTPProvider, AsyncWeb3

logger = logging.getLogger(__name__)

EIP1271_MAGIC = bytes.fromhex("1626ba7e")


def selector(signature: str) -> bytes:
    """The 4-byte selector of a function signature such as ``withdraw(address)``."""
    return function_signature_to_4byte_selector(signature)


def encode_call(signature: str, types: list[str], args: list[object]) -> bytes:
    """Calldata for `signature` with ABI-encoded `args`."""
    return selector(signature) + encode(types, args)


class ChainError(Exception):
    """The node could not answer (unreachable, reverted, malformed)."""


class ChainClient(Protocol):
    """What the API asks the chain."""

    async def call(self, to: str, data: bytes) -> bytes:
        """`eth_call` at the latest block."""
        ...

    async def get_code(self, address: str) -> bytes:
        """The code at `address` (empty for an EOA)."""
        ...


async def is_valid_eip1271_signature(
    chain: ChainClient, address: str, message_hash: bytes, signature: bytes
) -> bool:
    """Whether contract wallet `address` accepts `signature` for `message_hash` (EIP-1271)."""
    try:
        if not await chain.get_code(address):
            return False
        data = encode_call(
            "isValidSignature(bytes32,bytes)", ["bytes32", "bytes"], [message_hash, signature]
        )
        result = await chain.call(address, data)
    except ChainError as exc:
        logger.warning("EIP-1271 check of %s failed: %s", address, exc)
        return False
    return len(result) >= 4 and result[:4] == EIP1271_MAGIC


async def withdrawable_of(chain: ChainClient, market: str, payee: str, token: str) -> int:
    """`CourseMarket.withdrawableOf(payee, token)`."""
    data = encode_call("withdrawableOf(address,address)", ["address", "address"], [payee, token])
    (amount,) = decode(["uint256"], await chain.call(market, data))
    return int(amount)


async def escrow_of(chain: ChainClient, market: str, provider: str, token: str) -> tuple[int, int]:
    """`CourseMarket.escrowOf(provider, token)` -> (net, fee)."""
    data = encode_call("escrowOf(address,address)", ["address", "address"], [provider, token])
    net, fee = decode(["uint256", "uint256"], await chain.call(market, data))
    return int(net), int(fee)


async def market_fee_bps(chain: ChainClient, market: str) -> int:
    """`CourseMarket.feeBps()`: the platform fee in basis points, for both rails."""
    (bps,) = decode(["uint16"], await chain.call(market, encode_call("feeBps()", [], [])))
    return int(bps)


async def course_provider(chain: ChainClient, market: str, course_id: int) -> str | None:
    """`CourseMarket.courseProvider(courseId)`, or None when no such course exists yet."""
    (count,) = decode(["uint256"], await chain.call(market, encode_call("courseCount()", [], [])))
    if not 1 <= course_id <= int(count):
        return None
    data = encode_call("courseProvider(uint256)", ["uint256"], [course_id])
    (provider,) = decode(["address"], await chain.call(market, data))
    return str(provider)


class Web3ChainClient:
    """`ChainClient` over JSON-RPC (TUITION_RPC_URL)."""

    def __init__(self, rpc_url: str, *, timeout: float = 5.0) -> None:
        self.w3 = AsyncWeb3(AsyncHTTPProvider(rpc_url, request_kwargs={"timeout": timeout}))

    async def call(self, to: str, data: bytes) -> bytes:
        try:
            result = await self.w3.eth.call({"to": to, "data": data})
        except Exception as exc:  # connection errors, reverts: all "the chain did not answer"
            raise ChainError(str(exc)) from exc
        return bytes(result)

    async def get_code(self, address: str) -> bytes:
        try:
            code = await self.w3.eth.get_code(address)  # type: ignore[arg-type]
        except Exception as exc:
            raise ChainError(str(exc)) from exc
        return bytes(code)
