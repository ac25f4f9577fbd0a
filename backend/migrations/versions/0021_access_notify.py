"""PostgreSQL tells every API replica which access answers changed (LISTEN/NOTIFY).

Statement-level triggers on `entitlements` send one notification per statement on the
`tuition_access` channel, delivered when (and only if) the transaction commits: the payload is
the changed "course_id:address" keys joined by commas, or "*" (flush everything) when a
statement changed more rows than fit one payload. Deleting courses also sends "*". A trigger
rather than a call in the grant function: every writer (the API, the indexer, the worker,
a restore, a hand-written UPDATE) is covered. See backend/access/cache.py. SQLite: nothing (one
process reads it, without a cache).

Revision ID: 0021_access_notify
Revises: 0020_worker_processes
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0021_access_notify"
down_revision: str | Sequence[str] | None = "0020_worker_processes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# At most 100 keys per notification: a payload must stay under 8,000 bytes, and a key is at
# most 10 + 1 + 42 characters plus a comma (100 keys: ~5,400 bytes).
FUNCTION = """
CREATE FUNCTION tuition_notify_access() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    keys text[];
BEGIN
    IF TG_TABLE_NAME = 'courses' THEN
        PERFORM pg_notify('tuition_access', '*');
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        SELECT array_agg(DISTINCT course_id || ':' || address) INTO keys FROM new_rows;
    ELSIF TG_OP = 'DELETE' THEN
        SELECT array_agg(DISTINCT course_id || ':' || address) INTO keys FROM old_rows;
    ELSE
        SELECT array_agg(DISTINCT k) INTO keys FROM (
            SELECT course_id || ':' || address AS k FROM new_rows
            UNION ALL SELECT course_id || ':' || address FROM old_rows) AS changed;
    END IF;
    IF keys IS NULL THEN
        RETURN NULL;  -- the statement changed no row
    END IF;
    IF cardinality(keys) > 100 THEN
        PERFORM pg_notify('tuition_access', '*');
    ELSE
        PERFORM pg_notify('tuition_access', array_to_string(keys, ','));
    END IF;
    RETURN NULL;
END
$$
"""

# Transition tables need one trigger per event.
TRIGGERS = (
    "CREATE TRIGGER entitlements_notify_insert AFTER INSERT ON entitlements "
    "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION tuition_notify_access()",
    "CREATE TRIGGER entitlements_notify_update AFTER UPDATE ON entitlements "
    "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION tuition_notify_access()",
    "CREATE TRIGGER entitlements_notify_delete AFTER DELETE ON entitlements "
    "REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION tuition_notify_access()",
    "CREATE TRIGGER courses_notify_delete AFTER DELETE ON courses "
    "FOR EACH STATEMENT EXECUTE FUNCTION tuition_notify_access()",
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(FUNCTION)
    for trigger in TRIGGERS:
        op.execute(trigger)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, table in (
        ("entitlements_notify_insert", "entitlements"),
        ("entitlements_notify_update", "entitlements"),
        ("entitlements_notify_delete", "entitlements"),
        ("courses_notify_delete", "courses"),
    ):
        op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
    op.execute("DROP FUNCTION IF EXISTS tuition_notify_access()")
