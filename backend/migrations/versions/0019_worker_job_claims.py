"""Worker jobs name the process running them.

- worker_jobs.claimed_by: "<celery node>:<pid>" of the process that marked the job running, so
  `resume_stalled` re-publishes a job whose worker was killed as soon as no live worker reports
  that process (found by scripts/fault_run.py: such a mint waited for the broker's visibility
  timeout, an hour).

Revision ID: 0019_worker_job_claims
Revises: 0018_chain_provider_records
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019_worker_job_claims"
down_revision: str | Sequence[str] | None = "0018_chain_provider_records"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("worker_jobs") as batch:
        batch.add_column(sa.Column("claimed_by", sa.String(200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("worker_jobs") as batch:
        batch.drop_column("claimed_by")
