"""The admin's verification of a provider reaches the chain once, and only for the reviewed
record, whatever order or how often the worker runs it."""

from __future__ import annotations

from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from support.anvil import Anvil
from support.factories import make_provider_profile
from support.market import OPERATOR, new_learner, transact
from support.worker import WorkerEnv

from backend.core.db import session_scope
from backend.provider import tasks as provider_tasks
from backend.provider.models import (
    ProviderProfile,
    ProviderVerificationRequest,
    VerificationOutcome,
)
from backend.provider.profiles import get_profile
from backend.provider.verification import request_verification
from backend.worker import tasks

pytestmark = pytest.mark.chain

ADMIN = "0x" + "ad" * 20
NAME, DOMAIN = "Chain School", "chain.school"


def relay() -> int:
    return int(tasks.relay_outbox.apply().get())


def run(request_id: int) -> dict[str, Any]:
    return dict(
        provider_tasks.set_provider_verification.apply(kwargs={"request_id": request_id}).get()
    )


def publish(wenv: WorkerEnv, anvil: Anvil, provider: LocalAccount, name: str, domain: str) -> None:
    """The provider publishes its record on-chain; the indexer's mirror is written directly."""
    certificate = wenv.deployed.certificate
    transact(anvil.w3, certificate.functions.setProviderProfile(name, domain), provider)
    with session_scope(wenv.factory) as s:
        make_provider_profile(s, provider.address, name, domain, chain_id=anvil.chain_id)


def ask(wenv: WorkerEnv, provider: str, *, verify: bool, reviewed: str | None = None) -> int:
    with session_scope(wenv.factory) as s:
        if verify and reviewed is None:
            reviewed = get_profile(s, wenv.deployed.anvil.chain_id, provider).profile_hash
        request = request_verification(
            s,
            chain_id=wenv.deployed.anvil.chain_id,
            admin=ADMIN,
            provider=provider,
            verify=verify,
            profile_hash=reviewed if verify else None,
            reason="reviewed the website",
        )
        assert request is not None
        return request.id


def on_chain(wenv: WorkerEnv, provider: str) -> tuple[Any, ...]:
    return tuple(wenv.deployed.certificate.functions.providerRecord(provider).call())


def request_row(wenv: WorkerEnv, request_id: int) -> ProviderVerificationRequest:
    with session_scope(wenv.factory) as s:
        row = s.get(ProviderVerificationRequest, request_id)
        assert row is not None
        s.expunge(row)
        return row


def test_verification_is_sent_once_with_the_operator_key(wenv: WorkerEnv, anvil: Anvil) -> None:
    provider = new_learner(anvil, fund=True)
    publish(wenv, anvil, provider, NAME, DOMAIN)
    request_id = ask(wenv, provider.address, verify=True)

    assert relay() == 1
    name, domain, verified, verified_at, verified_by = on_chain(wenv, provider.address)
    assert (name, domain, verified) == (NAME, DOMAIN, True)
    assert verified_at > 0 and verified_by == OPERATOR.address
    row = request_row(wenv, request_id)
    assert row.outcome == VerificationOutcome.SENT and row.tx_hash and row.completed_at
    (tx,) = wenv.transactions("provider-verification:")
    assert tx.tx_hash == row.tx_hash

    # A redelivery does nothing; so does the same decision asked again.
    assert run(request_id)["outcome"] == "nothing_to_do"
    assert relay() == 0
    assert len(wenv.transactions("provider-verification:")) == 1


def test_a_record_changed_after_the_review_is_not_verified(wenv: WorkerEnv, anvil: Anvil) -> None:
    provider = new_learner(anvil, fund=True)
    publish(wenv, anvil, provider, NAME, DOMAIN)
    request_id = ask(wenv, provider.address, verify=True)
    # The provider renames itself between the admin's review and the worker's run.
    transact(
        anvil.w3,
        wenv.deployed.certificate.functions.setProviderProfile("Harvard", DOMAIN),
        provider,
    )

    assert relay() == 1
    assert on_chain(wenv, provider.address)[2] is False
    assert request_row(wenv, request_id).outcome == VerificationOutcome.PROFILE_CHANGED
    assert wenv.transactions("provider-verification:") == []


def test_the_last_decision_wins_whatever_order_the_worker_runs_them(
    wenv: WorkerEnv, anvil: Anvil
) -> None:
    provider = new_learner(anvil, fund=True)
    publish(wenv, anvil, provider, NAME, DOMAIN)
    first = ask(wenv, provider.address, verify=True)
    assert run(first)["outcome"] == VerificationOutcome.SENT
    with session_scope(wenv.factory) as s:  # what the indexer mirrors from the event
        profile = s.get(ProviderProfile, (anvil.chain_id, provider.address))
        assert profile is not None
        profile.verified = True
    unverify = ask(wenv, provider.address, verify=False)
    again = ask(wenv, provider.address, verify=True)

    # The unverify's run comes after the newer verify exists: it is superseded, sends nothing.
    assert run(unverify)["outcome"] == "nothing_to_do"
    assert request_row(wenv, unverify).outcome == VerificationOutcome.SUPERSEDED
    assert run(again)["outcome"] == VerificationOutcome.ALREADY
    assert on_chain(wenv, provider.address)[2] is True
    assert len(wenv.transactions("provider-verification:")) == 1

    last = ask(wenv, provider.address, verify=False)
    # The relay publishes the four messages (the first three were run directly above).
    assert relay() == 4
    assert request_row(wenv, last).outcome == VerificationOutcome.SENT
    assert on_chain(wenv, provider.address)[2:] == (False, 0, "0x" + "0" * 40)
