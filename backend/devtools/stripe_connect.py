"""Stripe Connect in the local Stripe stand-in: Express accounts, account links with a local
onboarding page, and the money of destination charges (application fee, transfer, reversals).

Mixed into `backend.devtools.stripe_fake.StripeFake`, whose state, lock and event machinery it
uses. Objects follow Stripe's documented shapes (the fields Tuition reads, and their neighbours);
unknown parameters are refused like Stripe refuses them.
"""

from __future__ import annotations

import copy
import html
import secrets
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from backend.devtools.stripe_common import (
    _NO_REQUEST,
    JSON,
    StripeFakeError,
    _as_bool,
    _as_dict,
    _as_email,
    _as_int,
    _as_metadata,
    _as_url,
    _check_unknown,
    _expand_paths,
    _new_id,
    _page,
    _RequestContext,
    _require,
)

ACCOUNT_PARAMS = frozenset(
    {
        "business_type",
        "capabilities",
        "controller",
        "country",
        "default_currency",
        "email",
        "expand",
        "metadata",
        "type",
    }
)
ACCOUNT_LINK_PARAMS = frozenset(
    {"account", "collect", "expand", "refresh_url", "return_url", "type"}
)
ACCOUNT_LINK_LIFETIME = 300  # Stripe's account links expire after a few minutes
# What a new Express account must still provide before it may take charges and get payouts.
ONBOARDING_REQUIREMENTS = (
    "business_profile.mcc",
    "business_profile.url",
    "external_account",
    "individual.dob.day",
    "tos_acceptance.date",
    "tos_acceptance.ip",
)


class ConnectMixin:
    """Connect endpoints and their money movements, on top of the fake's state."""

    if TYPE_CHECKING:
        _lock: threading.RLock
        _objects: dict[str, dict[str, JSON]]

        def _now(self) -> int: ...
        def _get(self, kind: str, object_id: str, param: str = "id") -> JSON: ...
        def _render(self, obj: JSON, expand: list[str]) -> JSON: ...
        def _emit(
            self,
            event_type: str,
            obj: JSON,
            ctx: _RequestContext,
            previous: JSON | None = None,
            account: str | None = None,
        ) -> JSON: ...
        def _publish_now(self, event: JSON) -> JSON: ...
        def _list(self, items: list[JSON], params: Mapping[str, Any], url: str) -> JSON: ...

        @property
        def public_url(self) -> str: ...

    _account_links: dict[str, JSON]
    _fee_refunds: set[str]
    _balances: dict[str, dict[str, dict[str, int]]]
    _payout_accounts: dict[str, str]  # payout id -> the connected account it paid

    # ---------------------------------------------------------------- /v1/accounts

    def _api_create_account(self, params: JSON, ctx: _RequestContext) -> tuple[JSON, list[JSON]]:

        _check_unknown(params, ACCOUNT_PARAMS)
        kind = params.get("type") or None
        if kind is None and not params.get("controller"):
            raise StripeFakeError(
                "You must specify either `type` or `controller` when creating an account.",
                param="type",
            )
        if kind not in (None, "express"):
            raise StripeFakeError(
                f"stripe_fake supports Express accounts only, not {kind}", param="type"
            )
        email = params.get("email") or None
        if email is not None:
            email = _as_email(email, "email")
        requested = params.get("capabilities") or {}
        if not isinstance(requested, Mapping):
            raise StripeFakeError("Invalid hash", param="capabilities")
        capabilities = {}
        for name, spec in requested.items():
            if name not in ("card_payments", "transfers"):
                raise StripeFakeError(
                    f"Received unknown parameter: capabilities[{name}]", param="capabilities"
                )
            if isinstance(spec, Mapping) and str(spec.get("requested")).lower() == "true":
                capabilities[name] = "inactive"
        account: JSON = {
            "id": _new_id("acct_", 16),
            "object": "account",
            "business_type": params.get("business_type") or None,
            "capabilities": capabilities,
            "charges_enabled": False,
            "country": params.get("country") or "US",
            "created": self._now(),
            "default_currency": params.get("default_currency") or "usd",
            "details_submitted": False,
            "email": email,
            "metadata": _as_metadata(params.get("metadata"), "metadata"),
            "payouts_enabled": False,
            "requirements": {
                "currently_due": list(ONBOARDING_REQUIREMENTS),
                "eventually_due": list(ONBOARDING_REQUIREMENTS),
                "past_due": [],
                "disabled_reason": "requirements.past_due",
                "current_deadline": None,
            },
            "type": "express",
        }
        self._objects["account"][account["id"]] = account
        return self._render(account, _expand_paths(params)), []

    def _api_create_account_link(
        self, params: JSON, ctx: _RequestContext
    ) -> tuple[JSON, list[JSON]]:

        _check_unknown(params, ACCOUNT_LINK_PARAMS)
        account = self._get("account", str(_require(params, "account", "account")), "account")
        link_type = _require(params, "type", "type")
        if link_type not in ("account_onboarding", "account_update"):
            raise StripeFakeError(
                "Invalid type: must be one of account_onboarding or account_update", param="type"
            )
        return_url = _as_url(_require(params, "return_url", "return_url"), "return_url")
        refresh_url = _as_url(
            params.get("refresh_url") or _require(params, "refresh_url", "refresh_url"),
            "refresh_url",
        )
        now = self._now()
        token = secrets.token_urlsafe(16)
        self._account_links[token] = {
            "account": account["id"],
            "return_url": return_url,
            "refresh_url": refresh_url,
            "expires_at": now + ACCOUNT_LINK_LIFETIME,
        }
        link = {
            "object": "account_link",
            "created": now,
            "expires_at": now + ACCOUNT_LINK_LIFETIME,
            "url": f"{self.public_url}/connect/onboard/{token}",
        }
        return link, []

    # ---------------------------------------------------------------- onboarding page

    def onboarding_page(self, token: str) -> tuple[int, str]:
        """The hosted onboarding form of an account link: ``(status, html)`` or ``(303, url)``
        to the refresh URL when the link expired."""

        with self._lock:
            link = copy.deepcopy(self._account_links.get(token))
        if link is None:
            return 404, _page("Link not found", "<p>This onboarding link does not exist.</p>")
        if link["expires_at"] < self._now():
            return 303, link["refresh_url"]
        account_id = html.escape(link["account"])
        body = (
            f'<p class="note">Test mode: onboarding of the Express account {account_id}. '
            "Submitting fills every requirement with test data.</p>"
            f'<form method="post" action="/connect/onboard/{html.escape(token)}">'
            "<button type=submit>Submit details</button></form>"
        )
        return 200, _page("Set up payouts", body)

    def submit_onboarding(self, token: str) -> tuple[int, str]:
        """The onboarding form was submitted: the account is complete (``account.updated`` is
        delivered before the redirect); ``(303, return_url)``."""

        with self._lock:
            link = self._account_links.get(token)
            if link is None:
                return 404, _page("Link not found", "<p>This onboarding link does not exist.</p>")
            if link["expires_at"] < self._now():
                return 303, link["refresh_url"]
            return_url = link["return_url"]
            account = self._get("account", link["account"])
            done = account["details_submitted"] and account["charges_enabled"]
        if not done:  # a second submit (back button) just returns
            self.complete_onboarding(link["account"])
        return 303, return_url

    def complete_onboarding(self, account_id: str) -> JSON:
        """Fill every requirement of `account_id` (charges and payouts enabled); returns the
        ``account.updated`` event (delivered now).

        Raises:
            StripeFakeError: the account completed onboarding already.
        """

        with self._lock:
            account = self._get("account", account_id)
            if account["details_submitted"] and account["charges_enabled"]:
                raise StripeFakeError(f"Account {account_id} has completed onboarding already.")
            previous = {
                key: copy.deepcopy(account[key])
                for key in ("charges_enabled", "payouts_enabled", "details_submitted")
            } | {"requirements": copy.deepcopy(account["requirements"])}
            account.update(charges_enabled=True, payouts_enabled=True, details_submitted=True)
            account["capabilities"] = {name: "active" for name in account["capabilities"]}
            account["requirements"] = {
                "currently_due": [],
                "eventually_due": [],
                "past_due": [],
                "disabled_reason": None,
                "current_deadline": None,
            }
            event = self._emit("account.updated", account, _NO_REQUEST, previous, account_id)
        return self._publish_now(event)

    # ---------------------------------------------------------------- destination charges

    def _destination_data(self, intent_data: JSON, total: int) -> JSON:
        """Validate `payment_intent_data`'s transfer_data and application_fee_amount."""

        transfer = intent_data.get("transfer_data")
        fee = intent_data.get("application_fee_amount")
        if transfer is None:
            if fee not in (None, ""):
                raise StripeFakeError(
                    "Can only apply an application_fee_amount when the PaymentIntent is "
                    "attempting a direct payment (using an OAuth key or Stripe-Account header) "
                    "or destination payment (using `transfer_data[destination]`).",
                    param="payment_intent_data[application_fee_amount]",
                )
            return {}
        transfer = _as_dict(transfer, "payment_intent_data[transfer_data]")
        destination = str(transfer.get("destination") or "")
        account = self._objects["account"].get(destination)
        if account is None:
            raise StripeFakeError(
                f"No such destination: '{destination}'",
                param="payment_intent_data[transfer_data][destination]",
                code="resource_missing",
            )
        if account["capabilities"].get("transfers") != "active":
            raise StripeFakeError(
                "Your destination account needs to have at least one of the following "
                "capabilities enabled: transfers, crypto_transfers, legacy_payments",
                param="payment_intent_data[transfer_data][destination]",
            )
        amount = 0
        if fee not in (None, ""):
            amount = _as_int(fee, "payment_intent_data[application_fee_amount]")
            if amount > total:
                raise StripeFakeError(
                    "The application fee cannot be greater than the amount of the charge.",
                    param="payment_intent_data[application_fee_amount]",
                )
        return {"destination": destination, "application_fee_amount": amount}

    def _attach_destination(self, intent: JSON, charge: JSON, destination: JSON) -> None:
        """Record a destination charge's split on its PaymentIntent and Charge."""

        if not destination:
            for obj in (intent, charge):
                obj.update(transfer_data=None, application_fee_amount=None)
            charge.update(application_fee=None, destination=None, transfer=None)
            return
        transfer_data = {"destination": destination["destination"]}
        fee = destination["application_fee_amount"]
        for obj in (intent, charge):
            obj.update(transfer_data=dict(transfer_data), application_fee_amount=fee)
        transfer: JSON = {
            "id": _new_id("tr_"),
            "object": "transfer",
            "amount": charge["amount"] - fee,
            "amount_reversed": 0,
            "created": self._now(),
            "currency": charge["currency"],
            "destination": destination["destination"],
            "metadata": {},
            "reversed": False,
            "source_transaction": charge["id"],
        }
        self._objects["transfer"][transfer["id"]] = transfer
        charge.update(
            application_fee=_new_id("fee_") if fee else None,
            destination=destination["destination"],
            transfer=transfer["id"],
        )
        self._credit_destination(charge)

    # ---------------------------------------------------------------- connected balances

    def _balance_of(self, account_id: str) -> dict[str, dict[str, int]]:
        return self._balances.setdefault(account_id, {"available": {}, "pending": {}})

    def _credit_destination(self, charge: JSON) -> None:
        """A destination charge succeeded: its net (amount minus the application fee) is
        transferred to the connected account, pending until Stripe settles it."""
        if not charge.get("transfer") or charge.get("status") != "succeeded":
            return
        net = charge["amount"] - (charge.get("application_fee_amount") or 0)
        pending = self._balance_of(charge["destination"])["pending"]
        pending[charge["currency"]] = pending.get(charge["currency"], 0) + net

    def _reverse_destination(self, charge: JSON, refunded: int) -> None:
        """A refund reversed the transfer: the connected account gives back its share of the
        refunded amount."""
        fee = charge.get("application_fee_amount") or 0
        share = refunded * (charge["amount"] - fee) // charge["amount"]
        self._reverse(self._get("transfer", charge["transfer"]), share)

    def _reverse(self, transfer: JSON, amount: int) -> None:
        """Take `amount` of a transfer back from its connected account (from pending first; a
        balance may go negative, as on Stripe)."""
        transfer["amount_reversed"] += amount
        transfer["reversed"] = transfer["amount_reversed"] >= transfer["amount"]
        share = amount
        balance = self._balance_of(transfer["destination"])
        currency = transfer["currency"]
        from_pending = min(share, max(balance["pending"].get(currency, 0), 0))
        balance["pending"][currency] = balance["pending"].get(currency, 0) - from_pending
        balance["available"][currency] = balance["available"].get(currency, 0) - (
            share - from_pending
        )

    def _api_reverse_transfer(
        self, params: JSON, ctx: _RequestContext, transfer_id: str
    ) -> tuple[JSON, list[JSON]]:
        """`POST /v1/transfers/{id}/reversals`: the platform takes (part of) a transfer back."""
        _check_unknown(params, frozenset({"amount", "description", "expand", "metadata"}))
        transfer = self._get("transfer", transfer_id, "transfer")
        remaining = transfer["amount"] - transfer["amount_reversed"]
        amount = remaining
        if params.get("amount") not in (None, ""):
            amount = _as_int(params["amount"], "amount", minimum=1)
        if amount > remaining or remaining <= 0:
            raise StripeFakeError(
                f"Transfer {transfer_id} has only {remaining} left to reverse.", param="amount"
            )
        self._reverse(transfer, amount)
        reversal = {
            "id": _new_id("trr_"),
            "object": "transfer_reversal",
            "amount": amount,
            "created": self._now(),
            "currency": transfer["currency"],
            "metadata": _as_metadata(params.get("metadata"), "metadata"),
            "transfer": transfer_id,
        }
        return reversal, []

    def _balance_json(self, account_id: str | None) -> JSON:
        balance = self._balance_of(account_id) if account_id else {"available": {}, "pending": {}}

        def amounts(kind: str) -> list[JSON]:
            return [
                {"amount": amount, "currency": currency, "source_types": {"card": amount}}
                for currency, amount in sorted(balance[kind].items())
            ]

        return {
            "object": "balance",
            "available": amounts("available"),
            "pending": amounts("pending"),
            "livemode": False,
        }

    def _api_balance(self, params: JSON, ctx: _RequestContext) -> tuple[JSON, list[JSON]]:
        _check_unknown(params, frozenset({"expand"}))
        if ctx.stripe_account is not None:
            self._get("account", ctx.stripe_account, "Stripe-Account")
        return self._balance_json(ctx.stripe_account), []

    def _api_list_payouts(self, params: JSON, ctx: _RequestContext) -> tuple[JSON, list[JSON]]:
        _check_unknown(params, frozenset({"expand", "limit", "starting_after", "status"}))
        payouts = [
            payout
            for payout in reversed(self._objects["payout"].values())
            if self._payout_accounts.get(payout["id"]) == ctx.stripe_account
            and params.get("status") in (None, payout["status"])
        ]
        return self._list(payouts, params, "/v1/payouts"), []

    def settle_balance(self, account_id: str) -> JSON:
        """Stripe settled the account's pending funds: they become available."""
        with self._lock:
            self._get("account", account_id)
            balance = self._balance_of(account_id)
            for currency, amount in balance["pending"].items():
                balance["available"][currency] = balance["available"].get(currency, 0) + amount
            balance["pending"] = {}
            return self._balance_json(account_id)

    def pay_out(self, account_id: str) -> JSON:
        """Pay the account's available funds out to its bank: one ``payout.paid`` per currency
        (delivered now, with the event's `account`); returns them as a list."""
        events = []
        with self._lock:
            self._get("account", account_id)
            available = self._balance_of(account_id)["available"]
            now = self._now()
            for currency, amount in sorted(available.items()):
                if amount <= 0:
                    continue
                payout: JSON = {
                    "id": _new_id("po_"),
                    "object": "payout",
                    "amount": amount,
                    "arrival_date": now + 2 * 24 * 3600,
                    "created": now,
                    "currency": currency,
                    "destination": "ba_" + account_id.removeprefix("acct_"),
                    "method": "standard",
                    "status": "paid",
                    "type": "bank_account",
                }
                self._objects["payout"][payout["id"]] = payout
                self._payout_accounts[payout["id"]] = account_id
                available[currency] = 0
                events.append(self._emit("payout.paid", payout, _NO_REQUEST, None, account_id))
        return {"object": "list", "data": [self._publish_now(event) for event in events]}

    def _refund_destination(self, charge: JSON, params: JSON) -> tuple[JSON, bool]:
        """Validate `reverse_transfer` and `refund_application_fee` of a refund of `charge`;
        returns the refund's extra fields and whether the application fee is refunded."""

        reverse = _as_bool(params.get("reverse_transfer", False), "reverse_transfer")
        refund_fee = _as_bool(params.get("refund_application_fee", False), "refund_application_fee")
        if (reverse or refund_fee) and not charge.get("transfer"):
            param = "reverse_transfer" if reverse else "refund_application_fee"
            raise StripeFakeError(
                f"The charge {charge['id']} has no transfer to reverse.", param=param
            )
        fields = {"transfer_reversal": _new_id("trr_") if reverse else None}
        return fields, refund_fee and bool(charge.get("application_fee"))

    def fee_refunded(self, refund_id: str) -> bool:
        """Whether refund `refund_id` also refunded the charge's application fee (Stripe keeps
        that on the application fee's refunds, which the fake does not serve)."""
        with self._lock:
            return refund_id in self._fee_refunds
