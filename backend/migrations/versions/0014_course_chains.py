"""Several chains: a course's on-chain registration becomes a row per chain.

- course_chains: (course, chain id, on-chain id, listing, last mirrored block), unique per chain
  and on-chain id, and per course and chain.
- courses.onchain_id, listed_onchain and onchain_block move there, on the configured chain
  (`TUITION_CHAIN_ID`, or the `chain_id` the caller passes in the Alembic config's attributes).

Revision ID: 0014_course_chains
Revises: 0013_connect_accounts
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from backend.core.migrate import configured_chain_id

revision: str = "0014_course_chains"
down_revision: str | Sequence[str] | None = "0013_connect_accounts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "course_chains",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("course_id", sa.Integer(), nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("onchain_id", sa.BigInteger(), nullable=False),
        sa.Column("listed", sa.Boolean(), nullable=True),
        sa.Column("block", sa.BigInteger(), nullable=True),
        sa.Column("linked_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["course_id"],
            ["courses.id"],
            name=op.f("fk_course_chains_course_id_courses"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_course_chains")),
        sa.UniqueConstraint(
            "chain_id", "onchain_id", name=op.f("uq_course_chains_chain_id_onchain_id")
        ),
        sa.UniqueConstraint(
            "course_id", "chain_id", name=op.f("uq_course_chains_course_id_chain_id")
        ),
    )
    op.execute(
        sa.text(
            "INSERT INTO course_chains (course_id, chain_id, onchain_id, listed, block, linked_at) "
            "SELECT id, :chain_id, onchain_id, listed_onchain, onchain_block, updated_at "
            "FROM courses WHERE onchain_id IS NOT NULL"
        ).bindparams(chain_id=configured_chain_id())
    )
    with op.batch_alter_table("courses", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("uq_courses_onchain_id"), type_="unique")
        batch_op.drop_column("onchain_id")
        batch_op.drop_column("listed_onchain")
        batch_op.drop_column("onchain_block")


def downgrade() -> None:
    # Only one chain's registrations fit the old columns: the configured chain's are kept.
    with op.batch_alter_table("courses", schema=None) as batch_op:
        batch_op.add_column(sa.Column("onchain_block", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("listed_onchain", sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column("onchain_id", sa.BigInteger(), nullable=True))
        batch_op.create_unique_constraint(op.f("uq_courses_onchain_id"), ["onchain_id"])
    op.execute(
        sa.text(
            "UPDATE courses SET "
            "onchain_id = (SELECT onchain_id FROM course_chains c WHERE c.course_id = courses.id "
            "AND c.chain_id = :chain_id), "
            "listed_onchain = (SELECT listed FROM course_chains c WHERE c.course_id = courses.id "
            "AND c.chain_id = :chain_id), "
            "onchain_block = (SELECT block FROM course_chains c WHERE c.course_id = courses.id "
            "AND c.chain_id = :chain_id)"
        ).bindparams(chain_id=configured_chain_id())
    )
    op.drop_table("course_chains")
