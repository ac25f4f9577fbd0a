"""Small security primitives: addresses, opaque tokens, hashes, origins, signed fields."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from functools import lru_cache
from urllib.parse import urlsplit

from eth_utils import keccak

SESSION_COOKIE = "tuition_session"
NONCE_COOKIE = "tuition_siwe"
ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
# The native coin where a token address is expected (the contracts' convention).
NATIVE_TOKEN = ZERO_ADDRESS
ZERO_REF = "0x" + "00" * 32

_HEX_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_BYTES32 = re.compile(r"0x[0-9a-f]{64}")


class InvalidAddressError(ValueError):
    """Not a 0x address, or mixed case that is not a valid EIP-55 checksum."""


def _keccak_hex(data: bytes) -> str:
    return bytes(keccak(data)).hex()


try:  # safe-pysha3's C keccak, when installed, is several times faster than the default backend
    from sha3 import keccak_256 as _sha3_keccak_256

    def _keccak_hex(data: bytes) -> str:
        return str(_sha3_keccak_256(data).hexdigest())

except ImportError:  # pragma: no cover - depends on the environment
    pass


def _eip55(lower_hex: str) -> str:
    """EIP-55: upper-case each letter whose nibble in keccak(lower-case hex) is >= 8."""
    digest = _keccak_hex(lower_hex.encode("ascii"))
    return "0x" + "".join(
        [char.upper() if digest[i] > "7" else char for i, char in enumerate(lower_hex)]
    )


@lru_cache(maxsize=65536)
def checksum_address(value: str) -> str:
    """The EIP-55 form of `value`, cached (keccak per call is the expensive part).

    All-lower or all-upper hex is accepted; mixed case must already be the correct checksum, so a
    typo in a checksummed address is caught instead of silently accepted.

    Raises:
        InvalidAddressError: not an address.
    """
    if not _HEX_ADDRESS.fullmatch(value):
        raise InvalidAddressError("an address is 0x followed by 40 hex digits")
    body = value[2:]
    lower = body.lower()
    checksummed = _eip55(lower)
    if body != lower and body != body.upper() and checksummed != value:
        raise InvalidAddressError("address has an invalid EIP-55 checksum")
    return checksummed


def is_bytes32(value: str) -> bool:
    """Whether `value` is a lower-case 0x-prefixed 32-byte hex string."""
    return bool(_BYTES32.fullmatch(value))


def new_token() -> str:
    """A fresh opaque bearer token: 32 random bytes, URL-safe."""
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """How tokens are stored: sha256 hex, so a database leak gives no usable session."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_bytes32() -> str:
    """A random bytes32 as 0x-prefixed lower-case hex (order references)."""
    return "0x" + secrets.token_hex(32)


def origin_of(url: str) -> str:
    """The origin (scheme://host[:port]) of a URL, lower-cased, default ports dropped."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    port = parts.port
    if port is None or (scheme, port) in (("http", 80), ("https", 443)):
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def host_of(url: str) -> str:
    """The authority (host[:port]) of a URL as SIWE's `domain` field carries it."""
    return urlsplit(url).netloc


def derive_key(secret: str, purpose: str) -> bytes:
    """A key for `purpose` derived from `secret` (one secret never signs two kinds of thing)."""
    return hmac.new(secret.encode(), f"tuition/{purpose}".encode(), hashlib.sha256).digest()


def sign_fields(fields: Mapping[str, str], key: bytes) -> str:
    """HMAC-SHA256 (hex) of `fields`, in key order, one `name=value` per line."""
    message = "\n".join(f"{name}={fields[name]}" for name in sorted(fields))
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


def fields_signed(fields: Mapping[str, str], signature: str, key: bytes) -> bool:
    """Whether `signature` is `sign_fields(fields, key)` (compared in constant time)."""
    return hmac.compare_digest(sign_fields(fields, key), signature)
