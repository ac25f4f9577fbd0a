"""Worker processes say they are alive in the database; jobs say when their next run is due.

- worker_processes: one row per task-running worker process ("<celery node>:<pid>"), its
  heartbeat written every few seconds. `resume_stalled` used the broker's remote control to find
  the processes still running, which does not answer for a while after Redis restarts
  (scripts/fault_run.py lost a mint that way); the database answers as soon as it is up.

Revision ID: 0020_worker_processes
Revises: 0019_worker_job_claims
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from backend.core.db import UTCDateTime

revision: str = "0020_worker_processes"
down_revision: str | Sequence[str] | None = "0019_worker_job_claims"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "worker_processes",
        sa.Column("process", sa.String(200), nullable=False),
        sa.Column("started_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("seen_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("process", name=op.f("pk_worker_processes")),
    )
    op.create_index(op.f("ix_worker_processes_seen_at"), "worker_processes", ["seen_at"])
    with op.batch_alter_table("worker_jobs") as batch:
        batch.add_column(sa.Column("due_at", UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("worker_jobs") as batch:
        batch.drop_column("due_at")
    op.drop_index(op.f("ix_worker_processes_seen_at"), table_name="worker_processes")
    op.drop_table("worker_processes")
