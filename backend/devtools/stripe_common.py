"""What the Stripe stand-in's parts share: Stripe's error shape, form-encoded parameters and
their validation, ids, and the hosted pages' frame (`backend.devtools.stripe_fake` and its
Connect part, `backend.devtools.stripe_connect`)."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

JSON = dict[str, Any]

_ID_ALPHABET = string.ascii_letters + string.digits
# fmt: off
_ZERO_DECIMAL_CURRENCIES = frozenset({
    "bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga",
    "pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf",
})
# fmt: on
_CURRENCY_SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£", "jpy": "¥", "cad": "CA$", "aud": "A$"}
_INT_RE = re.compile(r"-?\d+")
_CURRENCY_RE = re.compile(r"[a-zA-Z]{3}")
_EMAIL_RE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_PARAM_NAME_RE = re.compile(r"([^\[\]]+)((?:\[[^\[\]]*\])*)")
_PARAM_INDEX_RE = re.compile(r"\[([^\[\]]*)\]")
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})

# --------------------------------------------------------------------------------------------
# Errors


class StripeFakeError(Exception):
    """An error Stripe would return: rendered as ``{"error": {...}}`` with an HTTP status.

    Args:
        message: Human-readable message, worded like Stripe's where known.
        status: HTTP status code.
        type: Stripe error type (``invalid_request_error``, ``idempotency_error``...).
        code: Stripe error code (``resource_missing``, ``parameter_missing``...).
        param: The offending parameter, in bracket notation.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.type = type
        self.code = code
        self.param = param

    def to_body(self) -> JSON:
        """Return the JSON body Stripe sends for this error."""
        error: JSON = {"type": self.type, "message": self.message}
        if self.code is not None:
            error["code"] = self.code
            error["doc_url"] = f"https://stripe.com/docs/error-codes/{self.code.replace('_', '-')}"
        if self.param is not None:
            error["param"] = self.param
        return {"error": error}


def _missing(param: str) -> StripeFakeError:
    return StripeFakeError(
        f"Missing required param: {param}.", code="parameter_missing", param=param
    )


def _no_such(kind: str, object_id: str, param: str = "id") -> StripeFakeError:
    return StripeFakeError(
        f"No such {kind}: '{object_id}'", status=404, code="resource_missing", param=param
    )


# --------------------------------------------------------------------------------------------
# Form encoding and parameter validation


def parse_params(pairs: Iterable[tuple[str, str]]) -> JSON:
    """Turn Stripe's bracket-encoded form pairs into nested dicts and lists.

    ``line_items[0][price_data][unit_amount]=4900`` becomes
    ``{"line_items": [{"price_data": {"unit_amount": "4900"}}]}``; ``expand[]=a`` appends.
    Values stay strings, as on the wire. Keys under ``metadata`` are never turned into list
    indices, since ``metadata[0]=x`` is a legitimate key.

    Raises:
        StripeFakeError: A name is malformed or used both as a value and as a hash.
    """
    root: JSON = {}
    for name, value in pairs:
        match = _PARAM_NAME_RE.fullmatch(name)
        if match is None:
            raise StripeFakeError(f"Invalid parameter name: {name}", param=name)
        keys = [match.group(1), *_PARAM_INDEX_RE.findall(match.group(2))]
        node = root
        for depth, key in enumerate(keys):
            # An empty index appends, like `expand[]=a&expand[]=b`.
            slot = key if key else str(len(node))
            if depth == len(keys) - 1:
                if isinstance(node.get(slot), dict):
                    raise StripeFakeError(f"Invalid hash: {name}", param=name)
                node[slot] = value
            else:
                child = node.setdefault(slot, {})
                if not isinstance(child, dict):
                    raise StripeFakeError(f"Invalid hash: {name}", param=name)
                node = child
    listified = _listify(root, keep_dict=True)
    assert isinstance(listified, dict)
    return listified


def _listify(node: JSON, *, keep_dict: bool) -> JSON | list[Any]:
    converted = {
        key: _listify(value, keep_dict=key == "metadata") if isinstance(value, dict) else value
        for key, value in node.items()
    }
    if not keep_dict and converted and all(key.isdigit() for key in converted):
        return [converted[key] for key in sorted(converted, key=int)]
    return converted


def _sub(prefix: str, key: str | int) -> str:
    return f"{prefix}[{key}]" if prefix else str(key)


def _check_unknown(params: Mapping[str, Any], allowed: frozenset[str], prefix: str = "") -> None:
    for key in params:
        if key not in allowed:
            path = _sub(prefix, key)
            raise StripeFakeError(f"Received unknown parameter: {path}", param=path)


def _require(params: Mapping[str, Any], key: str, path: str) -> Any:
    value = params.get(key)
    if value is None:
        raise _missing(path)
    if value == "":
        raise StripeFakeError(
            f"You passed an empty string for '{path}'. We assume empty values are an attempt to "
            f"unset a parameter; however '{path}' cannot be unset. You should remove '{path}' "
            "from your request or supply a non-empty value.",
            param=path,
        )
    return value


def _as_int(value: Any, path: str, *, minimum: int = 0, maximum: int | None = None) -> int:
    # bool is an int in Python but never a valid Stripe amount.
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and _INT_RE.fullmatch(value):
        number = int(value)
    else:
        raise StripeFakeError(
            f"Invalid integer: {value}", code="parameter_invalid_integer", param=path
        )
    if number < minimum:
        raise StripeFakeError(
            f"This value must be greater than or equal to {minimum}.",
            code="parameter_invalid_integer",
            param=path,
        )
    if maximum is not None and number > maximum:
        raise StripeFakeError(
            f"This value must be less than or equal to {maximum}.",
            code="parameter_invalid_integer",
            param=path,
        )
    return number


def _as_str(value: Any, path: str, *, max_length: int = 5000) -> str:
    if not isinstance(value, str):
        raise StripeFakeError(f"Invalid string: {value!r}", param=path)
    if len(value) > max_length:
        raise StripeFakeError(
            f"Invalid string: {value[:20]}...; must be at most {max_length} characters",
            param=path,
        )
    return value


def _as_dict(value: Any, path: str) -> JSON:
    if value == "":
        return {}
    if not isinstance(value, dict):
        raise StripeFakeError("Invalid object", param=path)
    return value


def _as_list(value: Any, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise StripeFakeError("Invalid array", param=path)
    return value


def _as_bool(value: Any, path: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
        return value.lower() in _TRUE
    raise StripeFakeError(f"Invalid boolean: {value}", param=path)


def _as_url(value: Any, path: str) -> str:
    url = _as_str(value, path)
    if not url.startswith(("http://", "https://")):
        raise StripeFakeError("Not a valid URL", code="url_invalid", param=path)
    return url


def _as_currency(value: Any, path: str) -> str:
    currency = _as_str(value, path)
    if not _CURRENCY_RE.fullmatch(currency):
        raise StripeFakeError(f"Invalid currency: {currency}", param=path)
    return currency.lower()


def _as_email(value: Any, path: str) -> str:
    email = _as_str(value, path, max_length=800)
    if not _EMAIL_RE.fullmatch(email):
        raise StripeFakeError(f"Invalid email address: {email}", code="email_invalid", param=path)
    return email


def _as_metadata(value: Any, path: str) -> dict[str, str]:
    if value is None:
        return {}
    raw = _as_dict(value, path)
    metadata: dict[str, str] = {}
    for key, item in raw.items():
        item_path = f"{path}[{key}]"
        if len(key) > 40:
            raise StripeFakeError(
                "Metadata keys can have a maximum length of 40 characters.", param=item_path
            )
        text = _as_str(item, item_path, max_length=500)
        # An empty value unsets the key in Stripe, so on create it is simply absent.
        if text:
            metadata[key] = text
    if len(metadata) > 50:
        raise StripeFakeError("Metadata can have a maximum of 50 keys.", param=path)
    return metadata


def _expand_paths(params: Mapping[str, Any]) -> list[str]:
    raw = params.get("expand")
    if raw is None:
        return []
    return [_as_str(item, f"expand[{i}]") for i, item in enumerate(_as_list(raw, "expand"))]


# --------------------------------------------------------------------------------------------
# Small helpers


def format_amount(amount: int, currency: str) -> str:
    """Format minor units for people, e.g. ``format_amount(4900, "usd") == "$49.00"``."""
    currency = currency.lower()
    if currency in _ZERO_DECIMAL_CURRENCIES:
        number = f"{amount:,}"
    else:
        number = f"{amount // 100:,}.{amount % 100:02d}"
    symbol = _CURRENCY_SYMBOLS.get(currency)
    return f"{symbol}{number}" if symbol else f"{number} {currency.upper()}"


def sign_payload(payload: bytes, secret: str, timestamp: int) -> str:
    """Return the ``Stripe-Signature`` header value for a webhook body.

    Stripe signs ``"{timestamp}.{body}"`` with HMAC-SHA256 keyed by the endpoint secret.
    """
    signed = f"{timestamp}.".encode() + payload
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def _new_id(prefix: str, length: int = 24) -> str:
    return prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(length))


@dataclass(frozen=True)
class _RequestContext:
    request_id: str | None = None
    idempotency_key: str | None = None
    # The Stripe-Account header: the platform acting as one of its connected accounts.
    stripe_account: str | None = None


_NO_REQUEST = _RequestContext()


def _page(title: str, body: str) -> str:
    # `title` is already HTML-safe: callers escape user-provided parts.
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title} · Stripe (test mode)</title><style>"
        "body{font-family:system-ui,sans-serif;max-width:30rem;margin:3rem auto;padding:0 1rem;"
        "color:#1a1a1a;line-height:1.5}"
        "button{font:inherit;font-weight:600;padding:.7rem 1.5rem;border:0;border-radius:6px;"
        "background:#3f37c9;color:#fff;cursor:pointer}"
        "button:focus-visible,a:focus-visible{outline:3px solid #1a1a1a;outline-offset:2px}"
        "a{color:#3f37c9}.note{color:#4a4a4a}"
        f"</style></head><body><main><h1>{title}</h1>{body}</main></body></html>"
    )
