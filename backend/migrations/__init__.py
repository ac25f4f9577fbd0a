"""Alembic migrations of the Tuition database (see backend.core.migrate)."""
