"""Fixtures of the contract suite: role-named accounts and session-scoped deployments.

Ape's pytest plugin snapshots the chain around every scope, so each test starts from the state
the session fixtures built, whatever the previous test did.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import ape_foundry.provider
import pytest
from ape.exceptions import ContractLogicError
from market_helpers import (
    DAY,
    ESN_PRICE,
    FEE_BPS,
    NATIVE_PRICE,
    REFUND_WINDOW,
    USDC_PRICE,
    ZERO,
)


def _revert_without_trace(self, exception, revert_message=None, **kwargs):
    """FoundryProvider._handle_execution_reverted minus the call-trace rendering.

    ape-foundry fetches and prints a full call trace for every revert (about a second each); the
    suite asserts well over a hundred reverts. The error itself is decoded exactly as before, so
    `ape.reverts(contract.CustomError, arg=...)` still checks the custom error and its arguments.
    """
    if not revert_message or revert_message == "0x":
        revert_message = "Transaction failed."
    if revert_message.startswith("revert: "):
        revert_message = revert_message[len("revert: ") :]
    kwargs.pop("trace", None)
    error = ContractLogicError(base_err=exception, revert_message=revert_message, **kwargs)
    return self.compiler_manager.enrich_error(error)


@pytest.fixture(scope="session", autouse=True)
def _fast_reverts() -> Iterator[None]:
    patch = pytest.MonkeyPatch()
    patch.setattr(
        ape_foundry.provider.FoundryProvider, "_handle_execution_reverted", _revert_without_trace
    )
    yield
    patch.undo()


@pytest.fixture(scope="session")
def owner(accounts: Any) -> Any:
    """Default admin of both contracts and deployer."""
    return accounts[0]


@pytest.fixture(scope="session")
def treasury(accounts: Any) -> Any:
    """Receives platform fees."""
    return accounts[1]


@pytest.fixture(scope="session")
def operator(accounts: Any) -> Any:
    """The backend's key: OPERATOR_ROLE on the market."""
    return accounts[2]


@pytest.fixture(scope="session")
def guardian(accounts: Any) -> Any:
    """May pause the market."""
    return accounts[3]


@pytest.fixture(scope="session")
def provider(accounts: Any) -> Any:
    """Course provider (payee) of the `course_id` course."""
    return accounts[4]


@pytest.fixture(scope="session")
def learner(accounts: Any) -> Any:
    """A buyer."""
    return accounts[5]


@pytest.fixture(scope="session")
def other(accounts: Any) -> Any:
    """An unprivileged account: second buyer, intruder."""
    return accounts[6]


@pytest.fixture(scope="session")
def issuer(accounts: Any) -> Any:
    """ISSUER_ROLE on the certificate contract."""
    return accounts[7]


@pytest.fixture(scope="session")
def verifier(accounts: Any) -> Any:
    """VERIFIER_ROLE on the certificate contract: vouches for providers' records."""
    return accounts[10]


@pytest.fixture(scope="session")
def esn(owner: Any, project: Any) -> Any:
    """The platform token stand-in: 18 decimals, EIP-2612 permit."""
    return owner.deploy(project.TestToken, "Esn Token", "ESN", 18)


@pytest.fixture(scope="session")
def usdc(owner: Any, project: Any) -> Any:
    """A 6-decimals stablecoin stand-in."""
    return owner.deploy(project.TestToken, "USD Coin", "USDC", 6)


@pytest.fixture(scope="session")
def fot_token(owner: Any, project: Any) -> Any:
    """A token that burns 1 % of every transfer."""
    return owner.deploy(project.FeeOnTransferToken, "Fee Token", "FEE")


@pytest.fixture(scope="session")
def market(
    owner: Any,
    treasury: Any,
    operator: Any,
    guardian: Any,
    esn: Any,
    usdc: Any,
    project: Any,
) -> Any:
    """CourseMarket with roles granted and ESN and USDC allowlisted."""
    contract = owner.deploy(project.CourseMarket, owner, treasury, FEE_BPS, 3 * DAY)
    contract.grantRole(contract.OPERATOR_ROLE(), operator, sender=owner)
    contract.grantRole(contract.GUARDIAN_ROLE(), guardian, sender=owner)
    contract.setTokenAllowed(esn, True, sender=owner)
    contract.setTokenAllowed(usdc, True, sender=owner)
    return contract


@pytest.fixture(scope="session")
def certificate(owner: Any, issuer: Any, verifier: Any, market: Any, project: Any) -> Any:
    """CourseCertificate bound to `market`, with `issuer` holding ISSUER_ROLE and `verifier`
    VERIFIER_ROLE."""
    contract = owner.deploy(project.CourseCertificate, owner, market)
    contract.grantRole(contract.ISSUER_ROLE(), issuer, sender=owner)
    contract.grantRole(contract.VERIFIER_ROLE(), verifier, sender=owner)
    return contract


@pytest.fixture(scope="session")
def course_id(
    market: Any, provider: Any, learner: Any, other: Any, owner: Any, esn: Any, usdc: Any
) -> int:
    """Course 1, "Solidity from Zero", 14-day refunds, priced in ETH, ESN and USDC.

    `learner` and `other` hold 1,000 ESN and 1,000 USDC each.
    """
    market.createCourse("Solidity from Zero", REFUND_WINDOW, sender=provider)
    market.setPrice(1, ZERO, NATIVE_PRICE, sender=provider)
    market.setPrice(1, esn, ESN_PRICE, sender=provider)
    market.setPrice(1, usdc, USDC_PRICE, sender=provider)
    for account in (learner, other):
        esn.mint(account, 1_000 * 10**18, sender=owner)
        usdc.mint(account, 1_000 * 10**6, sender=owner)
    return 1
