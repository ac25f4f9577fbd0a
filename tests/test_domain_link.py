"""The domain link: a provider's website names its issuer address, fetched with bounds."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from support.verification import IssuerSites

from backend.core.config import Settings
from backend.devstack import free_port
from backend.verification.domain_link import MAX_BYTES, LinkStatus, check_domain_link

ISSUER = "0x" + "ab" * 20
OTHER = "0x" + "cd" * 20


@pytest.fixture(scope="module")
def sites() -> Iterator[IssuerSites]:
    served = IssuerSites()
    yield served
    served.close()


def _check(sites: IssuerSites, domain: str, chain_id: int = 1) -> tuple[str, str]:
    link = check_domain_link(domain, ISSUER, chain_id, url_template=sites.url_template)
    return link.status, link.detail


def test_a_site_naming_the_issuer_on_the_chain_links(sites: IssuerSites) -> None:
    sites.publish("school.example", (5, OTHER), (1, ISSUER.upper().replace("0X", "0x")))
    assert _check(sites, "school.example")[0] == LinkStatus.OK


def test_the_wrong_chain_or_address_fails(sites: IssuerSites) -> None:
    sites.publish("elsewhere.example", (5, ISSUER), (1, OTHER))
    status, detail = _check(sites, "elsewhere.example")
    assert status == LinkStatus.FAILED and f"does not name {ISSUER} on chain 1" in detail


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"not json", "not a Tuition issuer file"),
        (b'{"issuers": {}}', '"issuers" list'),
        (json.dumps({"issuers": [{"chainId": True, "address": ISSUER}]}).encode(), "does not"),
        (b"[" + b" " * MAX_BYTES + b"]", f"larger than {MAX_BYTES} bytes"),
    ],
    ids=["not-json", "no-list", "bool-chain-id", "too-large"],
)
def test_malformed_files_fail(sites: IssuerSites, body: bytes, why: str) -> None:
    sites.files["bad.example"] = body
    status, detail = _check(sites, "bad.example")
    assert status == LinkStatus.FAILED and why in detail


def test_a_missing_file_fails_and_a_redirect_is_not_followed(sites: IssuerSites) -> None:
    assert _check(sites, "missing.example") == (
        LinkStatus.FAILED,
        sites.url_template.format(domain="missing.example") + " answered HTTP 404",
    )
    sites.publish("target.example", (1, ISSUER))
    sites.redirects["moved.example"] = sites.url_template.format(domain="target.example")
    assert "answered HTTP 302" in _check(sites, "moved.example")[1]


def test_an_unreachable_site_or_no_domain_is_not_checked() -> None:
    template = f"http://127.0.0.1:{free_port()}/{{domain}}/.well-known/tuition-issuer.json"
    link = check_domain_link("down.example", ISSUER, 1, url_template=template, timeout=1)
    assert link.status == LinkStatus.NOT_CHECKED and "could not be fetched" in link.detail
    assert check_domain_link(None, ISSUER, 1).status == LinkStatus.NOT_CHECKED


def test_production_only_fetches_over_https() -> None:
    secrets = {
        "stripe_secret_key": "sk_live_x",
        "stripe_webhook_secret": "whsec_x",
        "operator_private_key": "0x" + "11" * 32,
        "deployer_private_key": "0x" + "22" * 32,
    }
    with pytest.raises(ValueError, match="TUITION_DOMAIN_LINK_URL"):
        Settings(env="production", domain_link_url="http://{domain}/x.json", **secrets)
    Settings(env="production", **secrets)  # the default is https
