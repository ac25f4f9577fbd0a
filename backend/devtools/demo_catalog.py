"""Descriptions, lessons and card prices of the demo courses the deploy script registers on-chain.

The chain holds titles and token prices; the database holds what a learner reads. `tuition up`
seeds these rows; the indexer links each one to its on-chain id when it sees `CourseCreated`
from the same provider with the same title (in whichever order the two happen).

Every course's certificates are minted by the platform except the free course's: its learners
claim theirs with a voucher (and pay the gas), so the demo shows both certificate modes.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.catalog import service as catalog
from backend.catalog.models import CertificateMode, Course, CourseStatus
from backend.chain.deploy import DEMO_COURSES

ACTOR = "system:seed-demo"

CONTENT: dict[str, dict[str, Any]] = {
    "Solidity from Zero": {
        "description": "Write, test and deploy your first smart contracts: types, storage, "
        "events, errors and the habits that keep money safe.",
        "fiat": 4900,
        "lessons": [
            ("The EVM in one picture", "Accounts, transactions, gas and storage slots."),
            ("Your first contract", "State variables, functions, visibility and events."),
            ("Custom errors and checks", "Why reverts with typed errors beat strings."),
            ("Testing with Ape", "Fixtures, reverts and events in pytest."),
        ],
    },
    "Zero-Knowledge Proofs in Practice": {
        "description": "From commitments to SNARK circuits: build and verify proofs, and learn "
        "where they pay off on-chain.",
        "fiat": 9900,
        "lessons": [
            ("What a proof proves", "Completeness, soundness and zero knowledge."),
            ("Commitments and Merkle trees", "Hiding and binding, membership proofs."),
            ("A first circuit", "Constraints, witnesses and the trusted setup."),
        ],
    },
    "Designing Token Economies": {
        "description": "Supply, incentives and governance for tokens that are meant to last.",
        "fiat": 2900,
        "lessons": [
            ("Why a token at all", "Utility, governance and the cost of a token."),
            ("Emission schedules", "Inflation, vesting and unlocks."),
        ],
    },
    "Smart Contract Security Review": {
        "description": "Find re-entrancy, oracle and access-control bugs before attackers do.",
        "fiat": 19900,
        "lessons": [
            ("Threat models", "Who can call what, and with how much money."),
            ("Re-entrancy", "Checks-effects-interactions and guards."),
            ("Oracles and prices", "Manipulation windows and safer reads."),
        ],
    },
    "Ethereum for Everyone": {
        "description": "A free, friendly start: wallets, keys, transactions and gas.",
        "fiat": None,
        "certificate": CertificateMode.VOUCHER,
        "lessons": [
            ("Wallets and keys", "What a seed phrase is and why it matters."),
            ("Sending a transaction", "Nonces, gas and confirmations."),
        ],
    },
}


def seed_demo_catalog(session: Session, provider: str) -> list[Course]:
    """Create or refresh the demo courses of `provider` (idempotent)."""
    courses = []
    for spec in DEMO_COURSES:
        title = spec["title"]
        content = CONTENT[title]
        course = session.scalar(
            select(Course)
            .where(Course.provider == provider, Course.title == title)
            .order_by(Course.id)
            .limit(1)
        )
        if course is None:
            course = catalog.create_course(
                session,
                provider=provider,
                title=title,
                description=content["description"],
                refund_window=spec["refund_window"],
            )
        catalog.update_course(
            session,
            course,
            actor=ACTOR,
            description=content["description"],
            status=CourseStatus.PUBLISHED,
            certificate_mode=content.get("certificate", CertificateMode.MINT),
        )
        if content["fiat"] is not None and course.fiat_price != content["fiat"]:
            catalog.set_fiat_price(
                session, course, amount=content["fiat"], currency="usd", actor=ACTOR
            )
        for position, (lesson_title, body) in enumerate(content["lessons"], start=1):
            catalog.upsert_lesson(session, course, position=position, title=lesson_title, body=body)
        courses.append(course)
    return courses
