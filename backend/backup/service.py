"""Backups of the database and their restore.

PostgreSQL: `pg_dump` in its custom format, which reads the whole database in one snapshot, so
the indexer's checkpoints, the outbox, the worker's jobs and transactions and everything they
describe are as of one instant. SQLite (a laptop): SQLite's online backup, also one snapshot.
Each backup is written under a temporary name, then its SHA-256 beside it
(`<name>.sha256`, in `sha256sum` format), then renamed: a backup that has a checksum is complete.
Retention keeps the newest `keep` backups. A restore checks the checksum and refuses a database
that holds tables unless forced.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import sqlite3
import subprocess
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url

PREFIX = "tuition-"
STAMP = "%Y%m%dT%H%M%SZ"
NAME = re.compile(r"^tuition-(\d{8}T\d{6}Z)\.(dump|sqlite)$")
DEBIAN_PG_BIN = Path("/usr/lib/postgresql")


class BackupError(Exception):
    """A backup or restore that cannot be done (the message says why and what to do)."""


@dataclass(frozen=True)
class Backup:
    """One backup file and its checksum."""

    path: Path
    sha256: str
    size: int
    taken_at: datetime


@dataclass(frozen=True)
class Restored:
    """What a restored database holds."""

    revision: str | None
    checkpoints: dict[str, int]  # "<chain id>/<stream>" -> block
    outbox_pending: int
    tables: int


# ------------------------------------------------------------------ backup


def create_backup(
    database_url: str, directory: Path, *, keep: int, now: datetime | None = None
) -> tuple[Backup, list[Path]]:
    """Back the database up into `directory`; returns the backup and the files retention removed.

    Raises:
        BackupError: the database cannot be read, or the tools are missing or too old.
    """
    if keep < 1:
        raise BackupError("keep at least one backup")
    url = make_url(database_url)
    taken_at = (now or datetime.now(UTC)).replace(microsecond=0)
    directory.mkdir(parents=True, exist_ok=True)
    kind = "sqlite" if url.get_backend_name() == "sqlite" else "dump"
    final = directory / f"{PREFIX}{taken_at.strftime(STAMP)}.{kind}"
    if final.exists():
        raise BackupError(f"{final} exists already")
    partial = final.with_name(final.name + ".partial")
    try:
        if kind == "sqlite":
            _sqlite_backup(url, partial)
        else:
            _pg_dump(url, partial)
        digest = _sha256(partial)
        partial.rename(final)
    finally:
        partial.unlink(missing_ok=True)
    final.with_name(final.name + ".sha256").write_text(f"{digest}  {final.name}\n")
    backup = Backup(final, digest, final.stat().st_size, taken_at)
    return backup, prune(directory, keep)


def list_backups(directory: Path) -> list[Backup]:
    """Complete backups (with a checksum file) in `directory`, oldest first."""
    found = []
    for path in directory.glob(f"{PREFIX}*"):
        match = NAME.match(path.name)
        checksum = path.with_name(path.name + ".sha256")
        if not match or not checksum.exists():
            continue
        taken_at = datetime.strptime(match.group(1), STAMP).replace(tzinfo=UTC)
        digest = checksum.read_text().split()[0]
        found.append(Backup(path, digest, path.stat().st_size, taken_at))
    return sorted(found, key=lambda b: b.taken_at)


def prune(directory: Path, keep: int) -> list[Path]:
    """Remove all but the newest `keep` backups (and their checksums); returns what went."""
    removed = []
    for old in list_backups(directory)[:-keep]:
        for path in (old.path, old.path.with_name(old.path.name + ".sha256")):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def verify(path: Path) -> str:
    """The backup's SHA-256 after checking it against its checksum file.

    Raises:
        BackupError: no checksum file, or the file does not match it.
    """
    if not path.is_file():
        raise BackupError(f"no backup at {path}")
    checksum = path.with_name(path.name + ".sha256")
    if not checksum.exists():
        raise BackupError(f"{checksum.name} is missing: an incomplete or foreign backup")
    expected = checksum.read_text().split()[0]
    actual = _sha256(path)
    if actual != expected:
        raise BackupError(f"{path.name} is damaged: SHA-256 {actual}, its checksum says {expected}")
    return actual


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _sqlite_backup(url: URL, target: Path) -> None:
    source = _sqlite_path(url)
    if not source.exists():
        raise BackupError(f"no database at {source}")
    with closing(sqlite3.connect(source)) as src, closing(sqlite3.connect(target)) as dst:
        src.backup(dst)


def _pg_dump(url: URL, target: Path) -> None:
    dsn, env = _libpq(url)
    tool = pg_tool("pg_dump", _server_major(url))
    _run([tool, "--format=custom", "--no-owner", "--no-privileges", f"--file={target}", dsn], env)


# ------------------------------------------------------------------ restore


def restore_backup(database_url: str, path: Path, *, force: bool = False) -> Restored:
    """Restore `path` into the database of `database_url`.

    Raises:
        BackupError: a damaged backup, a backup of the other kind, or a database that holds
            tables while `force` is false.
    """
    verify(path)
    url = make_url(database_url)
    is_sqlite = url.get_backend_name() == "sqlite"
    if (path.suffix == ".sqlite") != is_sqlite:
        raise BackupError(f"{path.name} is not a backup of a {url.get_backend_name()} database")
    tables = _tables(url)
    if tables and not force:
        raise BackupError(
            f"the database holds {tables} tables: restoring would replace them. Restore into an"
            " empty database, or pass --force to replace its contents"
        )
    if is_sqlite:
        target = _sqlite_path(url)
        target.parent.mkdir(parents=True, exist_ok=True)
        for leftover in (target, Path(f"{target}-wal"), Path(f"{target}-shm")):
            leftover.unlink(missing_ok=True)
        shutil.copyfile(path, target)
    else:
        if tables:
            _wipe_pg(url)
        dsn, env = _libpq(url)
        tool = pg_tool("pg_restore", _server_major(url))
        _run(
            [
                tool,
                "--no-owner",
                "--no-privileges",
                "--exit-on-error",
                "--single-transaction",
                f"--dbname={dsn}",
                str(path),
            ],
            env,
        )
    return describe(url)


def describe(url: URL) -> Restored:
    """The migration revision, the indexer's checkpoints and the pending outbox of a database."""
    engine = create_engine(_sync(url))
    try:
        with engine.connect() as conn:
            revision = conn.scalar(text("SELECT version_num FROM alembic_version"))
            checkpoints = {
                f"{chain_id}/{stream}": int(block)
                for chain_id, stream, block in conn.execute(
                    text("SELECT chain_id, stream, block_number FROM indexer_checkpoints")
                )
            }
            pending = conn.scalar(text("SELECT count(*) FROM outbox WHERE published_at IS NULL"))
    finally:
        engine.dispose()
    return Restored(revision, checkpoints, int(pending or 0), _tables(url))


def _tables(url: URL) -> int:
    if url.get_backend_name() == "sqlite":
        path = _sqlite_path(url)
        if not path.exists():
            return 0
        with closing(sqlite3.connect(path)) as conn:
            row = conn.execute(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
                " AND name NOT LIKE 'sqlite_%'"
            ).fetchone()
        return int(row[0])
    engine = create_engine(_sync(url))
    try:
        with engine.connect() as conn:
            return int(
                conn.scalar(
                    text(
                        "SELECT count(*) FROM pg_tables WHERE schemaname NOT IN"
                        " ('pg_catalog', 'information_schema')"
                    )
                )
                or 0
            )
    finally:
        engine.dispose()


def _wipe_pg(url: URL) -> None:
    engine = create_engine(_sync(url))
    try:
        with engine.begin() as conn:
            schemas = conn.scalars(
                text(
                    "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%'"
                    " AND nspname <> 'information_schema'"
                )
            ).all()
            for schema in schemas:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            conn.execute(text("CREATE SCHEMA public"))
    finally:
        engine.dispose()


# ------------------------------------------------------------------ tools


def pg_tool(name: str, server_major: int) -> str:
    """`name` (pg_dump, pg_restore) of at least the server's major version: Debian's versioned
    directory for that version first, then PATH.

    Raises:
        BackupError: none found, or only older ones (they refuse a newer server's database).
    """
    candidates = [DEBIAN_PG_BIN / str(server_major) / "bin" / name]
    if on_path := shutil.which(name):
        candidates.append(Path(on_path))
    versions = []
    for candidate in candidates:
        if not candidate.exists():
            continue
        out = subprocess.run(  # noqa: S603 - a PostgreSQL client tool
            [str(candidate), "--version"], capture_output=True, text=True, check=False
        ).stdout
        match = re.search(r"(\d+)(?:\.\d+)?", out)
        major = int(match.group(1)) if match else 0
        if major >= server_major:
            return str(candidate)
        versions.append(f"{candidate} ({major})")
    raise BackupError(
        f"no {name} for PostgreSQL {server_major}"
        + (f": found only {', '.join(versions)}" if versions else "")
        + f"; install postgresql-client-{server_major}"
    )


def _server_major(url: URL) -> int:
    engine = create_engine(_sync(url))
    try:
        with engine.connect() as conn:
            return int(conn.scalar(text("SHOW server_version_num")) or 0) // 10000
    except Exception as exc:
        raise BackupError(f"cannot reach the database: {exc}") from exc
    finally:
        engine.dispose()


def _libpq(url: URL) -> tuple[str, dict[str, str]]:
    """A libpq connection URL without the password, and the environment that carries it (never
    on the command line, where `ps` shows it)."""
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    dsn = url.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    return dsn, env


def _sync(url: URL) -> URL:
    if url.get_backend_name() == "postgresql":
        return url.set(drivername="postgresql+psycopg")
    return url


def _sqlite_path(url: URL) -> Path:
    if not url.database or url.database == ":memory:":
        raise BackupError("an in-memory SQLite database has nothing to back up")
    return Path(url.database)


def _run(args: list[str], env: dict[str, str]) -> None:
    proc = subprocess.run(args, capture_output=True, text=True, env=env, check=False)  # noqa: S603
    if proc.returncode != 0:
        raise BackupError(f"{Path(args[0]).name} failed: {proc.stderr.strip()[-2000:]}")
