"""Connect in the Stripe stand-in, driven by the real ``stripe`` SDK over HTTP: Express accounts,
account links and the onboarding page, destination charges, refunds that reverse them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import stripe

from backend.devtools.stripe_fake import StripeFake, StripeFakeError

API_KEY = "sk_test_devtools_connect"
RETURN_URL = "https://tuition.test/provider?connect=return"
REFRESH_URL = "https://tuition.test/provider?connect=refresh"


@pytest.fixture(scope="module")
def server() -> Iterator[StripeFake]:
    with StripeFake(API_KEY) as fake:
        yield fake


@pytest.fixture
def fake(server: StripeFake) -> StripeFake:
    server.reset()
    return server


@pytest.fixture
def client(fake: StripeFake) -> stripe.StripeClient:
    return stripe.StripeClient(
        API_KEY, base_addresses={"api": fake.api_base}, max_network_retries=0
    )


@pytest.fixture
def browser(fake: StripeFake) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fake.api_base, trust_env=False) as http:
        yield http


def one_item(amount: int, name: str) -> list[dict[str, Any]]:
    """Checkout line items: one course at `amount` cents."""
    return [
        {
            "quantity": 1,
            "price_data": {
                "currency": "usd",
                "unit_amount": amount,
                "product_data": {"name": name},
            },
        }
    ]


def express(client: stripe.StripeClient) -> stripe.Account:
    return client.v1.accounts.create(
        params={
            "type": "express",
            "capabilities": {
                "card_payments": {"requested": True},
                "transfers": {"requested": True},
            },
            "metadata": {"provider": "0xabc"},
        }
    )


def link(client: stripe.StripeClient, account_id: str) -> stripe.AccountLink:
    return client.v1.account_links.create(
        params={
            "account": account_id,
            "type": "account_onboarding",
            "refresh_url": REFRESH_URL,
            "return_url": RETURN_URL,
        }
    )


def ready(client: stripe.StripeClient, fake: StripeFake) -> stripe.Account:
    account = express(client)
    fake.complete_onboarding(account.id)
    return client.v1.accounts.retrieve(account.id)


def destination_session(
    client: stripe.StripeClient, destination: str, fee: int | None = 500
) -> stripe.checkout.Session:
    intent_data: dict[str, Any] = {"transfer_data": {"destination": destination}}
    if fee is not None:
        intent_data["application_fee_amount"] = fee
    return client.v1.checkout.sessions.create(
        params={
            "mode": "payment",
            "success_url": "https://tuition.test/done",
            "line_items": one_item(4900, "Rust 101"),
            "payment_intent_data": intent_data,  # type: ignore[typeddict-item]
        }
    )


def test_a_new_express_account_cannot_take_charges_until_onboarded(
    client: stripe.StripeClient,
) -> None:
    account = express(client)
    assert account.id.startswith("acct_") and account.type == "express"
    assert (account.charges_enabled, account.payouts_enabled, account.details_submitted) == (
        False,
        False,
        False,
    )
    assert account.capabilities is not None and account.capabilities.transfers == "inactive"
    assert account.requirements is not None
    assert "external_account" in (account.requirements.currently_due or [])
    assert account.metadata is not None and account.metadata.to_dict() == {"provider": "0xabc"}
    assert client.v1.accounts.retrieve(account.id).id == account.id


def test_onboarding_page_completes_the_account_and_returns_to_the_platform(
    client: stripe.StripeClient, fake: StripeFake, browser: httpx.Client
) -> None:
    account = express(client)
    onboarding = link(client, account.id)
    assert onboarding.object == "account_link" and onboarding.expires_at > onboarding.created
    path = onboarding.url.removeprefix(fake.api_base)
    page = browser.get(path)
    assert page.status_code == 200 and account.id in page.text
    submitted = browser.post(path)
    assert submitted.status_code == 303 and submitted.headers["location"] == RETURN_URL
    after = client.v1.accounts.retrieve(account.id)
    assert after.charges_enabled and after.payouts_enabled and after.details_submitted
    assert after.requirements is not None and after.requirements.currently_due == []
    [event] = fake.events("account.updated")
    assert event["account"] == account.id  # Connect events name the connected account
    assert event["data"]["previous_attributes"]["charges_enabled"] is False
    again = browser.post(path)  # the back button: no second event
    assert again.status_code == 303 and len(fake.events("account.updated")) == 1


def test_an_expired_account_link_sends_the_provider_to_the_refresh_url(
    client: stripe.StripeClient, fake: StripeFake, browser: httpx.Client
) -> None:
    now = [1_900_000_000.0]
    fake._clock = lambda: now[0]
    try:
        onboarding = link(client, express(client).id)
        now[0] += 301
        page = browser.get(onboarding.url.removeprefix(fake.api_base))
    finally:
        fake._clock = __import__("time").time
    assert page.status_code == 303 and page.headers["location"] == REFRESH_URL


def test_account_link_params_are_checked(client: stripe.StripeClient) -> None:
    account = express(client)
    with pytest.raises(stripe.InvalidRequestError, match="return_url"):
        client.v1.account_links.create(
            params={"account": account.id, "type": "account_onboarding", "refresh_url": "x"}  # type: ignore[typeddict-item]
        )
    with pytest.raises(stripe.InvalidRequestError, match="No such account"):
        link(client, "acct_missing")


def test_a_destination_charge_records_the_transfer_and_the_application_fee(
    client: stripe.StripeClient, fake: StripeFake
) -> None:
    account = ready(client, fake)
    session = destination_session(client, account.id, fee=490)
    fake.complete_session(session.id)
    paid = client.v1.checkout.sessions.retrieve(
        session.id, params={"expand": ["payment_intent.latest_charge"]}
    )
    intent = paid.payment_intent
    assert isinstance(intent, stripe.PaymentIntent)
    assert intent.application_fee_amount == 490
    assert intent.transfer_data is not None and intent.transfer_data.destination == account.id
    charge = intent.latest_charge
    assert isinstance(charge, stripe.Charge)
    assert charge.transfer is not None and str(charge.transfer).startswith("tr_")
    assert charge.application_fee_amount == 490


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("not_onboarded", "capabilities enabled: transfers"),
        ("missing_account", "No such destination"),
        ("fee_above_total", "cannot be greater than the amount"),
        ("fee_without_destination", "application_fee_amount"),
    ],
)
def test_impossible_destination_charges_are_refused(
    client: stripe.StripeClient, fake: StripeFake, case: str, message: str
) -> None:
    with pytest.raises(stripe.InvalidRequestError, match=message):
        if case == "not_onboarded":
            destination_session(client, express(client).id)
        elif case == "missing_account":
            destination_session(client, "acct_nothere")
        elif case == "fee_above_total":
            destination_session(client, ready(client, fake).id, fee=4901)
        else:
            client.v1.checkout.sessions.create(
                params={
                    "mode": "payment",
                    "success_url": "https://tuition.test/done",
                    "line_items": one_item(4900, "Rust 101"),
                    "payment_intent_data": {"application_fee_amount": 100},
                }
            )


def test_refund_reverses_the_transfer_and_refunds_the_fee_only_when_asked(
    client: stripe.StripeClient, fake: StripeFake
) -> None:
    account = ready(client, fake)
    session = destination_session(client, account.id)
    fake.complete_session(session.id)
    intent_id = str(client.v1.checkout.sessions.retrieve(session.id).payment_intent)
    refund = client.v1.refunds.create(
        params={
            "payment_intent": intent_id,
            "reverse_transfer": True,
            "refund_application_fee": True,
        }
    )
    assert refund.transfer_reversal is not None and refund.transfer_reversal.startswith("trr_")
    assert fake.fee_refunded(refund.id)

    plain = destination_session(client, account.id)
    fake.complete_session(plain.id)
    plain_intent = str(client.v1.checkout.sessions.retrieve(plain.id).payment_intent)
    kept = client.v1.refunds.create(params={"payment_intent": plain_intent})
    assert kept.transfer_reversal is None and not fake.fee_refunded(kept.id)


def test_reverse_transfer_on_a_charge_without_a_transfer_is_refused(
    client: stripe.StripeClient, fake: StripeFake
) -> None:
    session = client.v1.checkout.sessions.create(
        params={
            "mode": "payment",
            "success_url": "https://tuition.test/done",
            "line_items": one_item(100, "x"),
        }
    )
    fake.complete_session(session.id)
    intent_id = str(client.v1.checkout.sessions.retrieve(session.id).payment_intent)
    with pytest.raises(stripe.InvalidRequestError, match="no transfer to reverse"):
        client.v1.refunds.create(params={"payment_intent": intent_id, "reverse_transfer": True})


def test_completing_onboarding_twice_is_refused(
    client: stripe.StripeClient, fake: StripeFake
) -> None:
    account = ready(client, fake)
    with pytest.raises(StripeFakeError, match="already"):
        fake.complete_onboarding(account.id)
