"""Per-course certificate mode: the platform mints, or the learner claims with a voucher.

Revision ID: 0006_course_certificate_mode
Revises: 0005_payouts_token_allowlist
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_course_certificate_mode"
down_revision: str | Sequence[str] | None = "0005_payouts_token_allowlist"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Existing courses keep what every course did so far: the platform mints.
    with op.batch_alter_table("courses", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "certificate_mode", sa.String(length=8), server_default="mint", nullable=False
            )
        )
        batch_op.create_check_constraint(
            op.f("ck_courses_certificate_mode"), "certificate_mode IN ('mint', 'voucher')"
        )


def downgrade() -> None:
    with op.batch_alter_table("courses", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_courses_certificate_mode"), type_="check")
        batch_op.drop_column("certificate_mode")
