"""Fast log decoding: topic0 → a decoder built once from event ABIs.

Static words are decoded by slicing the hex strings the node sent (no bytes round trip, no
per-log ABI machinery), with the same strictness as an ABI decoder: padding must be zero and
integers must fit their width. Dynamic values (the course title) go through `eth_abi.decode`.
Addresses are checksummed with cchecksum (Rust) and cached, since buyers and tokens repeat.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import eth_abi
from eth_utils import keccak

from backend.chain.deployment import (
    CERTIFICATE,
    MARKET,
    ContractNotDeployedError,
    Deployment,
)

log = logging.getLogger(__name__)

try:  # cchecksum is ~10x faster than eth_utils; fall back so the indexer still runs without it.
    from cchecksum import to_checksum_address as _checksum
except ImportError:  # pragma: no cover
    from eth_utils import to_checksum_address as _checksum

try:  # safe-pysha3 (C) hashes ~15x faster than pycryptodome, which eth_hash picks first.
    from sha3 import keccak_256 as _keccak_256

    def keccak256(data: bytes) -> bytes:
        """keccak-256 digest."""
        return bytes(_keccak_256(data).digest())

except ImportError:  # pragma: no cover

    def keccak256(data: bytes) -> bytes:
        """keccak-256 digest."""
        return bytes(keccak(data))


# The events of ICourseMarket and ICourseCertificate, exactly as declared there. Used when the
# compiled ABIs are not at hand, and checked against them when they are.
MARKET_EVENTS = (
    "CourseCreated(uint256 indexed courseId, address indexed provider, uint32 refundWindow, "
    "string title)",
    "CourseUpdated(uint256 indexed courseId, bool listed, uint32 refundWindow)",
    "PriceSet(uint256 indexed courseId, address indexed token, uint256 price, bool accepted)",
    "CoursePurchased(uint256 indexed courseId, address indexed buyer, address indexed recipient, "
    "address token, uint256 amount, uint256 fee, bytes32 orderRef)",
    "AccessGranted(uint256 indexed courseId, address indexed learner, uint8 source, bytes32 ref)",
    "AccessRevoked(uint256 indexed courseId, address indexed learner, uint8 source, bytes32 ref)",
    "Refunded(uint256 indexed courseId, address indexed learner, address indexed payer, "
    "address token, uint256 amount, address by)",
    "Released(address indexed provider, address indexed token, uint256 net, uint256 fee)",
    "Withdrawn(address indexed payee, address indexed token, uint256 amount)",
    "FeeChanged(uint16 previousBps, uint16 newBps)",
    "TreasuryChanged(address indexed previous, address indexed current)",
    "TokenAllowed(address indexed token, bool allowed)",
    "DelegateSet(address indexed provider, address indexed delegate, bool allowed)",
)
CERTIFICATE_EVENTS = (
    "CertificateMinted(uint256 indexed tokenId, address indexed learner, "
    "uint256 indexed courseId, address signer, bytes28 recordHash)",
    "CertificateRevoked(uint256 indexed tokenId, uint8 reason, address by)",
    "IssuerSet(address indexed provider, address indexed issuer, bool allowed)",
    "CertificateRemoved(uint256 indexed tokenId, address indexed holder)",
    "CertificateReplaced(uint256 indexed tokenId, uint256 indexed newTokenId)",
    "ProviderProfileSet(address indexed provider, string name, string domain)",
    "ProviderVerificationSet(address indexed provider, bool verified, bytes32 profileHash, "
    "address by)",
)
# Events the contracts emit that carry nothing the indexer needs (ERC-721, ERC-5192, access
# control, pausing). They are left out of the eth_getLogs topic filter, and ignored if seen.
IGNORED_EVENTS = (
    "Transfer(address,address,uint256)",
    "Approval(address,address,uint256)",
    "ApprovalForAll(address,address,bool)",
    "Locked(uint256)",
    "Unlocked(uint256)",
    "RoleGranted(bytes32,address,address)",
    "RoleRevoked(bytes32,address,address)",
    "RoleAdminChanged(bytes32,bytes32,bytes32)",
    "Paused(address)",
    "Unpaused(address)",
    "OwnershipTransferred(address,address)",
    "EIP712DomainChanged()",
)

ZERO_WORD = "0" * 64
_ADDRESS_PAD = "0" * 24
_PARAM_RE = re.compile(r"^\s*(?P<type>[\w\[\]]+)(?P<indexed>\s+indexed)?\s+(?P<name>\w+)\s*$")


class DecodeError(ValueError):
    """A log that does not match the ABI of its topic0 (wrong topic count, bad padding...)."""


@dataclass(slots=True)
class DecodedLog:
    """One decoded log with its position in the chain."""

    block_number: int
    block_hash: str
    tx_hash: str
    tx_index: int
    log_index: int
    address: str
    event: str
    args: dict[str, Any]

    @property
    def key(self) -> tuple[str, str, int]:
        """The identity of the log within a chain: (block hash, tx hash, log index)."""
        return (self.block_hash, self.tx_hash, self.log_index)


@dataclass(frozen=True, slots=True)
class Param:
    """One event parameter."""

    name: str
    type: str
    indexed: bool


def parse_signature(signature: str) -> tuple[str, list[Param]]:
    """Parse `Name(type [indexed] name, ...)` into the event name and its parameters."""
    name, _, rest = signature.partition("(")
    body = rest.rstrip().removesuffix(")")
    params: list[Param] = []
    for part in filter(None, (p.strip() for p in body.split(","))):
        match = _PARAM_RE.match(part)
        if match is None:
            raise ValueError(f"cannot parse event parameter {part!r} in {signature!r}")
        params.append(Param(match["name"], match["type"], bool(match["indexed"])))
    return name.strip(), params


def params_from_abi(entry: Mapping[str, Any]) -> tuple[str, list[Param]]:
    """The name and parameters of an ABI `event` entry (enums are already `uint8` there)."""
    params = [
        Param(i["name"], i["type"] if i["type"] != "tuple" else _tuple_type(i), i["indexed"])
        for i in entry["inputs"]
    ]
    return entry["name"], params


def _tuple_type(entry: Mapping[str, Any]) -> str:
    return "(" + ",".join(c["type"] for c in entry["components"]) + ")"


def topic0(name: str, params: Sequence[Param]) -> str:
    """The keccak topic of an event's canonical signature, as 0x hex."""
    canonical = f"{name}({','.join(p.type for p in params)})"
    return "0x" + keccak(text=canonical).hex()


def checksum_cache(maxsize: int = 65536) -> Any:
    """A checksum function with a bounded dict cache (faster than lru_cache on a hot path)."""
    cache: dict[str, str] = {}

    def checksum(lower_hex40: str) -> str:
        try:
            return cache[lower_hex40]
        except KeyError:
            if len(cache) >= maxsize:
                cache.clear()
            value = cache[lower_hex40] = _checksum("0x" + lower_hex40)
            return value

    return checksum


def _word_decoder(type_: str, checksum: Any) -> Any:
    """A function decoding one 64-hex-char ABI word of a static type, strictly."""
    if type_ == "address":

        def dec_address(word: str) -> str:
            if word[:24] != _ADDRESS_PAD:
                raise DecodeError("address word has non-zero padding")
            return str(checksum(word[24:].lower()))

        return dec_address
    if type_ == "bool":

        def dec_bool(word: str) -> bool:
            if word == ZERO_WORD:
                return False
            if word == "0" * 63 + "1":
                return True
            raise DecodeError("bool word is neither 0 nor 1")

        return dec_bool
    if type_.startswith("uint"):
        bits = int(type_[4:] or 256)
        limit = 1 << bits

        def dec_uint(word: str) -> int:
            value = int(word, 16)
            if value >= limit:
                raise DecodeError(f"{type_} out of range")
            return value

        return dec_uint
    if type_.startswith("int"):
        bits = int(type_[3:] or 256)

        def dec_int(word: str) -> int:
            value = int(word, 16)
            if value >= 1 << 255:
                value -= 1 << 256
            if not -(1 << (bits - 1)) <= value < 1 << (bits - 1):
                raise DecodeError(f"{type_} out of range")
            return value

        return dec_int
    if type_.startswith("bytes") and type_ != "bytes":
        size = int(type_[5:])
        width = 2 * size
        pad = "0" * (64 - width)

        def dec_bytes(word: str) -> str:
            if word[width:] != pad:
                raise DecodeError(f"{type_} has non-zero padding")
            return "0x" + word[:width].lower()

        return dec_bytes
    return None


def _is_dynamic(type_: str) -> bool:
    return type_ in ("string", "bytes") or type_.endswith("[]") or type_.startswith("(")


class EventDecoder:
    """Decodes the logs of one event signature."""

    __slots__ = (
        "_data_decoders",
        "_data_slow",
        "_data_types",
        "_indexed",
        "_names_order",
        "n_topics",
        "name",
        "params",
        "topic",
    )

    def __init__(self, name: str, params: Sequence[Param], checksum: Any) -> None:
        self.name = name
        self.params = list(params)
        self.topic = topic0(name, params)
        indexed = [p for p in params if p.indexed]
        data = [p for p in params if not p.indexed]
        self.n_topics = 1 + len(indexed)
        self._names_order = [p.name for p in params]
        self._indexed = []
        for p in indexed:
            dec = _word_decoder(p.type, checksum)
            # Indexed dynamic values are only their hash: keep the topic as bytes32.
            self._indexed.append((p.name, dec or _word_decoder("bytes32", checksum)))
        self._data_types = [p.type for p in data]
        self._data_slow = any(
            _is_dynamic(t) or _word_decoder(t, checksum) is None for t in self._data_types
        )
        self._data_decoders = [(p.name, _word_decoder(p.type, checksum)) for p in data]
        if self._data_slow:
            self._data_decoders = [(p.name, None) for p in data]

    def decode(self, topics: Sequence[str], data: str) -> dict[str, Any]:
        """Decode a log's topics (0x hex, topic0 included) and data (0x hex) into named args."""
        if len(topics) != self.n_topics:
            raise DecodeError(f"{self.name}: {len(topics)} topics, expected {self.n_topics}")
        args: dict[str, Any] = {}
        for (name, dec), topic in zip(self._indexed, topics[1:], strict=True):
            if len(topic) != 66:
                raise DecodeError(f"{self.name}: malformed topic")
            args[name] = dec(topic[2:])
        if self._data_slow:
            try:
                values = eth_abi.decode(self._data_types, bytes.fromhex(data[2:]))
            except Exception as exc:
                raise DecodeError(f"{self.name}: {exc}") from exc
            for (name, _), value in zip(self._data_decoders, values, strict=True):
                args[name] = value
        else:
            # Strict ABI decoders reject data shorter than needed; extra bytes are tolerated.
            if len(data) < 2 + 64 * len(self._data_decoders):
                raise DecodeError(f"{self.name}: data too short")
            pos = 2
            for name, word_dec in self._data_decoders:
                args[name] = word_dec(data[pos : pos + 64])
                pos += 64
        return args


class LogDecoder:
    """topic0 → decoder map for a set of contracts' events."""

    def __init__(self, events: Iterable[tuple[str, Sequence[Param]]]) -> None:
        checksum = checksum_cache()
        self.checksum = checksum
        self.by_topic: dict[str, EventDecoder] = {}
        for name, params in events:
            dec = EventDecoder(name, params, checksum)
            self.by_topic[dec.topic] = dec
        self.ignored_topics = {
            "0x" + keccak(text=sig).hex(): sig.partition("(")[0] for sig in IGNORED_EVENTS
        }

    @classmethod
    def default(cls) -> LogDecoder:
        """A decoder for the built-in ICourseMarket and ICourseCertificate event list."""
        return cls(parse_signature(s) for s in (*MARKET_EVENTS, *CERTIFICATE_EVENTS))

    @classmethod
    def for_deployment(cls, deployment: Deployment) -> LogDecoder:
        """From the deployment's market and certificate ABIs, else from the built-in events."""
        abis = []
        for name in (MARKET, CERTIFICATE):
            try:
                abi = deployment.contract(name).load_abi()
            except ContractNotDeployedError:
                continue
            if abi is not None:
                abis.append(abi)
        return cls.from_abis(abis) if abis else cls.default()

    @classmethod
    def from_abis(cls, abis: Iterable[Sequence[Mapping[str, Any]]]) -> LogDecoder:
        """Decoders for the indexed events, taken from the compiled ABIs where they are.

        Only the events of ICourseMarket / ICourseCertificate are indexed (role, pause and
        ERC-721 events are not fetched at all); an ABI whose event differs from the interface
        wins, with a warning, since it is what the deployed contract emits.
        """
        builtin = {
            name: params
            for name, params in (parse_signature(s) for s in (*MARKET_EVENTS, *CERTIFICATE_EVENTS))
        }
        events = dict(builtin)
        for abi in abis:
            for entry in abi:
                if entry.get("type") != "event" or entry.get("anonymous"):
                    continue
                name, params = params_from_abi(entry)
                if name not in builtin:
                    continue
                if topic0(name, params) != topic0(name, builtin[name]):
                    log.warning("the ABI's %s differs from the interface; using the ABI", name)
                events[name] = params
        return cls(events.items())

    @property
    def topics(self) -> list[str]:
        """The topic0 values worth fetching (the eth_getLogs OR-filter)."""
        return sorted(self.by_topic)

    def decode(self, raw: Mapping[str, Any]) -> DecodedLog | None:
        """Decode one raw JSON-RPC log; None for ignored events; DecodeError for bad ones."""
        topics = raw["topics"]
        if not topics:
            raise DecodeError("anonymous log")
        dec = self.by_topic.get(topics[0])
        if dec is None:
            if topics[0] in self.ignored_topics:
                return None
            raise DecodeError(f"unknown topic0 {topics[0]}")
        return DecodedLog(
            block_number=int(raw["blockNumber"], 16),
            block_hash=raw["blockHash"],
            tx_hash=raw["transactionHash"],
            tx_index=int(raw["transactionIndex"], 16),
            log_index=int(raw["logIndex"], 16),
            address=self.checksum(raw["address"][2:].lower()),
            event=dec.name,
            args=dec.decode(topics, raw["data"]),
        )


def json_safe(args: Mapping[str, Any]) -> dict[str, Any]:
    """Args as JSON: ints above 2**53 as decimal strings, so no JSON reader loses precision."""
    out: dict[str, Any] = {}
    for k, v in args.items():
        if isinstance(v, bool):
            out[k] = v
        elif isinstance(v, int):
            out[k] = v if -(1 << 53) < v < 1 << 53 else str(v)
        else:
            out[k] = v
    return out
