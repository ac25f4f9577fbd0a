"""The `tuition` command line: one entry point for the local stack and every service."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True, help="Tuition: sell courses for crypto or card.")
db_app = typer.Typer(no_args_is_help=True, help="Database migrations.")
app.add_typer(db_app, name="db")


@app.command()
def toolchain() -> None:
    """Make the Solidity compiler and anvil available offline (idempotent)."""
    from backend.chain.toolchain import ensure_toolchain

    ensure_toolchain(verbose=True)


@app.command()
def api(
    host: str = typer.Option("127.0.0.1", help="Interface to bind."),
    port: int = typer.Option(8000, help="Port to bind."),
    workers: int = typer.Option(1, help="Worker processes."),
) -> None:
    """Serve the HTTP API and the web app."""
    raise typer.Exit("not implemented yet")


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head")) -> None:
    """Apply migrations up to REVISION."""
    raise typer.Exit("not implemented yet")


@db_app.command("current")
def db_current() -> None:
    """Show the database's current revision."""
    raise typer.Exit("not implemented yet")


@app.command()
def indexer() -> None:
    """Index CourseMarket and CourseCertificate events into the database."""
    raise typer.Exit("not implemented yet")


if __name__ == "__main__":
    app()
