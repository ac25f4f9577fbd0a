"""Domain linkage: a provider's website names the addresses that issue its certificates.

In the spirit of DID Configuration (`/.well-known/did-configuration.json`) and Blockcerts issuer
profiles: the provider publishes, at `https://<its domain>/.well-known/tuition-issuer.json`,

    {"issuers": [{"chainId": 1, "address": "0x..."}, ...]}

and a verifier that is online fetches it and checks that the certificate's issuer is listed for
the certificate's chain. The fetch is bounded: a short timeout, a size cap, no redirects, and
https only outside development (the URL template is a setting, validated by `Settings`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx

WELL_KNOWN_PATH = "/.well-known/tuition-issuer.json"
DEFAULT_URL_TEMPLATE = "https://{domain}" + WELL_KNOWN_PATH
MAX_BYTES = 16 * 1024
TIMEOUT = 3.0


class LinkStatus:
    """The outcome of a domain-link check."""

    OK = "ok"
    FAILED = "failed"  # the website answered and does not name this issuer
    NOT_CHECKED = "not_checked"  # offline, no domain, or the website could not be reached


@dataclass(frozen=True)
class DomainLink:
    """What the check found, and where it looked."""

    status: str
    detail: str
    url: str | None = None


def _listed(document: Any, issuer: str, chain_id: int) -> bool:
    entries = document.get("issuers") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise ValueError('the file has no "issuers" list')
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        address, chain = entry.get("address"), entry.get("chainId")
        if (
            isinstance(address, str)
            and address.lower() == issuer.lower()
            and isinstance(chain, int)
            and not isinstance(chain, bool)
            and chain == chain_id
        ):
            return True
    return False


def check_domain_link(
    domain: str | None,
    issuer: str,
    chain_id: int,
    *,
    url_template: str = DEFAULT_URL_TEMPLATE,
    timeout: float = TIMEOUT,
) -> DomainLink:
    """Fetch the provider's well-known file and check that it names `issuer` on `chain_id`."""
    if not domain:
        return DomainLink(LinkStatus.NOT_CHECKED, "the provider published no website domain")
    url = url_template.format(domain=domain)
    try:
        with (
            httpx.Client(timeout=timeout, follow_redirects=False) as client,
            client.stream("GET", url, headers={"Accept": "application/json"}) as response,
        ):
            if response.status_code != 200:
                return DomainLink(
                    LinkStatus.FAILED, f"{url} answered HTTP {response.status_code}", url
                )
            body = b""
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > MAX_BYTES:
                    return DomainLink(
                        LinkStatus.FAILED, f"{url} is larger than {MAX_BYTES} bytes", url
                    )
    except httpx.HTTPError as exc:
        return DomainLink(LinkStatus.NOT_CHECKED, f"{url} could not be fetched ({exc})", url)
    try:
        listed = _listed(json.loads(body), issuer, chain_id)
    except ValueError as exc:
        return DomainLink(LinkStatus.FAILED, f"{url} is not a Tuition issuer file: {exc}", url)
    if not listed:
        return DomainLink(
            LinkStatus.FAILED, f"{url} does not name {issuer} on chain {chain_id}", url
        )
    return DomainLink(LinkStatus.OK, f"{url} names {issuer} on chain {chain_id}", url)
