"""The contracts' rule for text that ends up in certificate metadata (course titles, provider
names): printable UTF-8, as `contracts/libraries/Text.sol` checks it on-chain.

Checked here first so that a title the market would refuse gets a clear 422 instead of a
transaction that reverts with `InvalidTitle(offset)`.
"""

from __future__ import annotations


def unprintable_offset(text: str) -> int | None:
    """The UTF-8 byte offset of the first character the contracts refuse, or None.

    Refused: control characters (U+0000..U+001F, U+007F..U+009F, so tab and newlines too),
    U+FFFE and U+FFFF (not XML characters), and lone surrogates (a JSON string may carry
    them; they are not UTF-8).
    """
    offset = 0
    for char in text:
        code = ord(char)
        if code < 0x20 or 0x7F <= code <= 0x9F or code in (0xFFFE, 0xFFFF):
            return offset
        if 0xD800 <= code <= 0xDFFF:
            return offset
        offset += len(char.encode("utf-8"))
    return None


def certificate_text(value: str, what: str, max_bytes: int) -> str:
    """`value` stripped, if the contracts would accept it as a title or name; else ValueError
    naming `what` (for pydantic validators: a 422 before any transaction)."""
    value = value.strip()
    if not value:
        raise ValueError(f"the {what} cannot be empty")
    offset = unprintable_offset(value)
    if offset is not None:
        raise ValueError(
            f"the {what} has a control character or a character certificates cannot show "
            f"(at byte {offset})"
        )
    if len(value.encode("utf-8")) > max_bytes:
        raise ValueError(f"the {what} is at most {max_bytes} bytes of UTF-8 (the contract's limit)")
    return value
