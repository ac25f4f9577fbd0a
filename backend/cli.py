"""The `tuition` command line: one entry point for the local stack and every service."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from backend.core.config import Role, Settings
    from backend.verification.service import ChainTarget

app = typer.Typer(no_args_is_help=True, help="Tuition: sell courses for crypto or card.")
db_app = typer.Typer(no_args_is_help=True, help="Database migrations.")
app.add_typer(db_app, name="db")
access_app = typer.Typer(no_args_is_help=True, help="Access rights and their on-chain records.")
app.add_typer(access_app, name="access")
catalog_app = typer.Typer(no_args_is_help=True, help="Courses and their on-chain links.")
app.add_typer(catalog_app, name="catalog")


NETWORK_HELP = "Network of TUITION_NETWORKS to work on (default: TUITION_NETWORK, else the first)."


def _settings_for(role: Role, network: str | None = None) -> Settings:
    """The settings, checked for what `role` uses; exits 2 with the reason when they cannot run
    it (a missing secret in production, an unknown network), before any work starts.

    `network` becomes TUITION_NETWORK for the whole process (and the processes it starts), so
    every later `get_settings()` works on that chain too.
    """
    import os

    from pydantic import ValidationError

    from backend.core.config import ConfigurationError, get_settings

    try:
        if network:
            get_settings().network_named(network)
            os.environ["TUITION_NETWORK"] = network
            # The entry names the chain, its RPC and WS: flat single-chain values would be another
            # network's.
            for flat in ("TUITION_CHAIN_ID", "TUITION_RPC_URL", "TUITION_WS_URL"):
                os.environ.pop(flat, None)
            get_settings.cache_clear()
        return get_settings().require(role)
    except (ConfigurationError, ValidationError, ValueError) as exc:
        typer.echo(f"tuition {role}: {exc}", err=True)
        raise typer.Exit(2) from exc


@app.command()
def toolchain() -> None:
    """Make the Solidity compiler and anvil available offline (idempotent)."""
    from backend.chain.toolchain import ensure_toolchain

    ensure_toolchain(verbose=True)


@app.command()
def up(
    api_port: int = typer.Option(8000, help="Port of the API and web app."),
    rpc_port: int = typer.Option(8545, help="Port of the local chain (chain id 31337)."),
    second_rpc_port: int = typer.Option(8546, help="Port of the second chain (31338; 0: none)."),
    stripe_port: int = typer.Option(12111, help="Port of the local Stripe stand-in."),
) -> None:
    """Run the whole local stack: two chains, contracts, database, API, indexers, worker."""
    from backend.devstack import DevStack, StackConfig

    stack = DevStack(
        StackConfig(
            api_port=api_port,
            rpc_port=rpc_port,
            second_rpc_port=second_rpc_port or None,
            stripe_port=stripe_port,
        )
    )
    try:
        stack.start()
        print(stack.summary())
        code = stack.watch()
    finally:
        stack.stop()
    raise typer.Exit(code)


@app.command("prod-local")
def prod_local(
    lb_port: int = typer.Option(8080, help="Port of the load balancer (what users reach)."),
    api_ports: str = typer.Option("8101,8102", help="Ports of the API replicas."),
    rpc_port: int = typer.Option(8645, help="Port of the chain (anvil, chain id 31337)."),
    stripe_port: int = typer.Option(12211, help="Port of the Stripe stand-in."),
    indexer_metrics_ports: str = typer.Option("9112,9113", help="Metrics ports of the indexers."),
    worker_metrics_ports: str = typer.Option("9122,9123", help="Metrics ports of the workers."),
    database_url: str = typer.Option(
        "postgresql://postgres@127.0.0.1:5432/tuition_prodlocal",
        help="PostgreSQL database of this stack (dropped and created on start).",
    ),
    redis_url: str = typer.Option("redis://127.0.0.1:6379/0", help="Redis (keys prefixed)."),
    state_dir: Path = typer.Option(
        Path("var/prod-local"), help="Secrets, logs, nginx files, deployment."
    ),
    demo: bool = typer.Option(False, help="Deploy the demo catalog too."),
) -> None:
    """Run the production shape on this machine: what docker-compose.yml starts, from the same
    settings (TUITION_ENV=production), on this machine's PostgreSQL and Redis."""
    from backend.prodlocal import MissingToolError, ProdConfig, ProdStack

    state = state_dir.resolve()
    stack = ProdStack(
        ProdConfig(
            lb_port=lb_port,
            api_ports=tuple(int(p) for p in api_ports.split(",")),
            rpc_port=rpc_port,
            stripe_port=stripe_port,
            indexer_metrics_ports=tuple(int(p) for p in indexer_metrics_ports.split(",")),
            worker_metrics_ports=tuple(int(p) for p in worker_metrics_ports.split(",")),
            postgres_url=database_url,
            redis_url=redis_url,
            state_dir=state,
            deployments_dir=state / "deployments",
            demo=demo,
        )
    )
    code = 1
    try:
        stack.start()
        print(stack.summary(), flush=True)
        code = stack.watch()
    except MissingToolError as exc:
        typer.echo(f"tuition prod-local: {exc}", err=True)
        code = 2
    except KeyboardInterrupt:
        code = 0
    finally:
        stack.stop()
        print("stopped: every process of the stack has exited", flush=True)
    raise typer.Exit(code)


@app.command()
def deploy(
    demo: bool = typer.Option(True, help="Also register the demo catalog and fund demo learners."),
    network: str = typer.Option("", help=NETWORK_HELP),
) -> None:
    """Deploy the contracts (idempotently) and write deployments/<network>.json."""
    from backend.chain.deploy import WrongChainError, deploy_from_settings

    try:
        deployment = deploy_from_settings(_settings_for("deploy", network), demo=demo)
    except WrongChainError as exc:
        typer.echo(f"tuition deploy: {exc}", err=True)
        raise typer.Exit(2) from exc
    for name, info in deployment["contracts"].items():
        print(f"{name:<18}{info['address']}")


@app.command()
def verify(
    token_id: str = typer.Argument(..., help="Certificate token id (decimal or 0x hex)."),
    record: Path | None = typer.Option(None, help="The certificate record JSON to check."),
    contract: str | None = typer.Option(None, help="Certificate contract (default: deployed)."),
    rpc_url: str | None = typer.Option(None, help="Chain RPC (default: the chain's own)."),
    chain: str | None = typer.Option(
        None, help="Network name or chain id (default: look on every configured chain)."
    ),
    offline: bool = typer.Option(False, help="Do not fetch the provider's domain link."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Verify a certificate from the chain alone, step by step; exit 0 only when VALID.

    Without --chain the certificate is looked for on every configured chain (TUITION_NETWORKS),
    and the report says where it was found.
    """
    import json
    from dataclasses import replace

    from backend.chain.deployment import DeploymentError, load_deployment
    from backend.core.config import get_settings
    from backend.verification.service import chain_targets, verify_on_chains

    settings = get_settings()
    try:
        number = int(token_id, 0)
    except ValueError as exc:
        raise typer.BadParameter(f"{token_id!r} is not a token id") from exc
    try:
        targets = chain_targets(
            settings,
            chain=chain,
            offline=offline,
            deployment_of=lambda s: load_deployment(s.deployment_file),
        )
    except DeploymentError as exc:
        raise typer.BadParameter(
            f"{exc}: the deployment names Tuition's certificate contract (TUITION_NETWORKS, "
            "TUITION_DEPLOYMENTS_DIR)"
        ) from exc
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    if contract or rpc_url:
        # An explicit contract or node: that one place (on the chain given, else the first).
        if not targets and contract is None:
            raise typer.BadParameter("no certificate contract deployed: pass --contract")
        base = targets[0] if targets else _bare_target(settings, contract or "", offline)
        targets = [
            replace(base, certificate=contract or base.certificate, rpc_url=rpc_url or base.rpc_url)
        ]
    if not targets:
        raise typer.BadParameter("no certificate contract deployed: pass --contract")
    report = verify_on_chains(targets, number, record.read_bytes() if record else None)
    if as_json:
        print(json.dumps(report.as_json(), indent=2))
    else:
        name = next((t.name for t in targets if t.chain_id == report.chain_id), "?")
        where = f"chain {report.chain_id} ({name})"
        if len(report.searched) > 1:
            found = "found on" if report.found else "not found; last looked on"
            print(f"searched chains {', '.join(map(str, report.searched))}: {found} {where}")
        print(f"certificate {report.token_id} on {report.contract} ({where})")
        marks = {"passed": "PASS", "failed": "FAIL", "not_checked": "----"}
        for step in report.steps:
            print(f"{marks[step.status]}  {step.name:<10}{step.detail}")
            for key, value in step.facts.items():
                print(f"          {key:<18}{value}")
        print(report.verdict.upper().replace("_", " "))
    raise typer.Exit(0 if report.valid else 1)


def _bare_target(settings: Settings, contract: str, offline: bool) -> ChainTarget:
    """A verification target without a deployment file: the given contract on the settings'
    chain."""
    from backend.chain.deployment import Deployment
    from backend.verification.service import ChainTarget, options_for

    options = options_for(settings, Deployment(certificate=contract), offline=offline)
    return ChainTarget(settings.chain_id, settings.network, settings.rpc_url, contract, options)


@app.command("seed-demo")
def seed_demo() -> None:
    """Descriptions, lessons and card prices of the demo courses (idempotent)."""
    from eth_account import Account
    from sqlalchemy.orm import sessionmaker

    from backend.core.config import get_settings
    from backend.core.db import make_engine, session_scope
    from backend.core.dev_accounts import DEMO_KEYS
    from backend.devtools.demo_catalog import seed_demo_catalog

    settings = get_settings()
    engine = make_engine(settings.database_url.get_secret_value())
    with session_scope(sessionmaker(engine)) as session:
        courses = seed_demo_catalog(session, Account.from_key(DEMO_KEYS["provider"]).address)
    engine.dispose()
    print(f"seeded {len(courses)} demo courses")


@app.command("seed-connect")
def seed_connect() -> None:
    """The demo provider's Connect account, onboarded at the local Stripe stand-in."""
    from eth_account import Account

    from backend.core.config import get_settings
    from backend.core.dev_accounts import DEMO_KEYS
    from backend.devtools.demo_connect import onboard_demo_provider

    settings = get_settings()
    if settings.stripe_api_base is None:
        typer.echo("seed-connect: only for the local Stripe stand-in", err=True)
        raise typer.Exit(2)
    provider = Account.from_key(DEMO_KEYS["provider"]).address
    print(f"demo provider's Stripe account {onboard_demo_provider(settings, provider)} is ready")


@app.command("stripe-fake")
def stripe_fake(
    port: int = typer.Option(12111, help="Port to listen on."),
    webhook_url: str = typer.Option(..., help="Where to deliver signed webhook events."),
) -> None:
    """Serve the local Stripe stand-in (development and tests only)."""
    from backend.core.config import get_settings
    from backend.devtools.stripe_fake import serve

    settings = get_settings()
    secret = settings.stripe_webhook_secret
    serve(
        host="127.0.0.1",
        port=port,
        api_key=settings.stripe_secret_key.get_secret_value(),
        webhook_url=webhook_url,
        webhook_secret=secret.get_secret_value() if secret else "",
    )


@app.command()
def api(
    host: str = typer.Option("127.0.0.1", help="Interface to bind."),
    port: int = typer.Option(8000, help="Port to bind."),
    workers: int = typer.Option(1, help="Worker processes."),
) -> None:
    """Serve the HTTP API and the web app."""
    from backend.app import run_api

    _settings_for("api")
    run_api(host=host, port=port, workers=workers)


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head")) -> None:
    """Apply migrations up to REVISION."""
    from backend.core.migrate import current, upgrade

    url = _settings_for("db").database_url.get_secret_value()
    upgrade(url, revision)
    print("database at " + (", ".join(current(url)) or "base"))


@app.command()
def backup(
    directory: Path = typer.Option(None, "--dir", help="Where (default TUITION_BACKUP_DIR)."),
    keep: int = typer.Option(0, help="Newest backups kept (default TUITION_BACKUP_KEEP)."),
) -> None:
    """Back the database up (one consistent snapshot), with a checksum, keeping the newest."""
    from backend.backup.service import BackupError, create_backup

    settings = _settings_for("db")
    try:
        made, removed = create_backup(
            settings.database_url.get_secret_value(),
            directory or settings.backup_dir,
            keep=keep or settings.backup_keep,
        )
    except BackupError as exc:
        typer.echo(f"tuition backup: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"backup {made.path} ({made.size} bytes, sha256 {made.sha256})")
    for path in removed:
        typer.echo(f"removed {path}")


@app.command()
def restore(
    path: Path = typer.Argument(..., help="A backup file written by `tuition backup`."),
    force: bool = typer.Option(False, "--force", help="Replace a database that holds tables."),
) -> None:
    """Restore a backup into the configured database (empty, unless --force)."""
    from backend.backup.service import BackupError, restore_backup

    settings = _settings_for("db")
    try:
        restored = restore_backup(settings.database_url.get_secret_value(), path, force=force)
    except BackupError as exc:
        typer.echo(f"tuition restore: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"restored {path.name}: {restored.tables} tables, revision {restored.revision}")
    for stream, block in sorted(restored.checkpoints.items()):
        typer.echo(f"  indexer {stream}: block {block} (indexing resumes after it)")
    typer.echo(f"  outbox: {restored.outbox_pending} message(s) to relay")


@db_app.command("current")
def db_current() -> None:
    """Show the database's current revision."""
    from backend.core.migrate import current, heads

    revisions = current(_settings_for("db").database_url.get_secret_value())
    print(", ".join(revisions) or "base (not migrated)")
    if set(revisions) != set(heads()):
        print("head is " + ", ".join(heads()) + ": run `tuition db upgrade`")
        raise typer.Exit(1)


@app.command()
def indexer(
    metrics_port: int = typer.Option(0, help="Serve Prometheus metrics on this port (0: off)."),
    start_block: int = typer.Option(-1, help="First run only: start here, not at deployBlock."),
    deployment: str = typer.Option("", help="Deployment file (default: deployments/<network>)."),
    progress: bool = typer.Option(None, help="Rich progress bar (default: on a terminal)."),
    loglevel: str = typer.Option("INFO", help="Log level."),
    network: str = typer.Option("", help=NETWORK_HELP),
) -> None:
    """Index CourseMarket and CourseCertificate events into the database (one per chain)."""
    import logging
    from pathlib import Path

    from backend.core.config import IndexerSettings
    from indexer.runner import configure_logging, run

    configure_logging(getattr(logging, loglevel.upper(), logging.INFO))
    overrides: dict[str, object] = {}
    if metrics_port:
        overrides["metrics_port"] = metrics_port
    if start_block >= 0:
        overrides["start_block"] = start_block
    if deployment:
        overrides["deployment_file"] = Path(deployment)
    if progress is not None:
        overrides["progress"] = progress
    settings = _settings_for("indexer", network)
    # The options override TUITION_INDEXER_*; validated again so bounds still apply.
    ixs = IndexerSettings.model_validate({**settings.indexer.model_dump(), **overrides})
    raise typer.Exit(run(settings, ixs))


@app.command()
def worker(
    concurrency: int = typer.Option(2, help="Task processes (or threads)."),
    pool: str = typer.Option("prefork", help="Celery pool: prefork, threads or solo."),
    beat: bool = typer.Option(False, "--beat", help="Also run the scheduler in this process."),
    loglevel: str = typer.Option("INFO", help="Log level."),
    metrics_port: int = typer.Option(0, help="Serve Prometheus metrics on this port (0: off)."),
    hostname: str = typer.Option(
        "", help="Celery node name (default celery@<host>; give each worker on a host its own)."
    ),
) -> None:
    """Run the Celery worker (chain writes, certificates, receipts)."""
    from backend.worker.cli import run_worker

    _settings_for("worker")
    run_worker(
        concurrency=concurrency,
        pool=pool,
        beat=beat,
        loglevel=loglevel,
        metrics_port=metrics_port or None,
        hostname=hostname or None,
    )


@access_app.command("adopt")
def access_adopt(
    course: int = typer.Argument(..., help="The on-chain course id."),
    learner: str = typer.Argument(..., help="The learner's address."),
) -> None:
    """Record in the database an access the chain grants and the database lacks (the fix the
    reconciler prints for "chain_only" drift)."""
    from backend.access.reconcile import adopt_chain_access
    from backend.core.db import process_session_factory
    from backend.worker.chain import get_chain

    try:
        result = adopt_chain_access(
            course, learner, factory=process_session_factory(), chain=get_chain()
        )
    except LookupError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(
        f"entitlement {result['entitlement_id']} ({result['source']}) records course {course} "
        f"for {learner}"
    )


@catalog_app.command("check-links")
def catalog_check_links(
    fix: bool = typer.Option(False, "--fix", help="Unlink the courses the chain disowns."),
    network: str = typer.Option("", help=NETWORK_HELP),
) -> None:
    """Report courses linked to an on-chain id that the network's market gives to another
    provider (or does not know); exit 1 when there are any and --fix was not given."""
    from web3 import Web3
    from web3.exceptions import ContractLogicError

    from backend.catalog.service import mismatched_links, unlink_onchain
    from backend.chain.artifacts import load_abi
    from backend.chain.deployment import load_deployment
    from backend.core.db import process_session_factory, session_scope

    settings = _settings_for("db", network)
    market_address = load_deployment(settings.deployment_file).market
    if market_address is None:
        raise typer.BadParameter("no CourseMarket deployed on this network")
    w3 = Web3(Web3.HTTPProvider(settings.rpc_url))
    market = w3.eth.contract(
        address=Web3.to_checksum_address(market_address), abi=load_abi("CourseMarket")
    )

    def provider_of(onchain_id: int) -> str | None:
        try:
            return str(market.functions.courseProvider(onchain_id).call())
        except ContractLogicError:
            return None  # UnknownCourse / InvalidCourseId

    with session_scope(process_session_factory()) as s:
        found = mismatched_links(s, settings.chain_id, provider_of)
        for course, onchain_id, onchain in found:
            typer.echo(
                f"course {course.id} ({course.provider}) is linked to on-chain course "
                f"{onchain_id} of chain {settings.chain_id}, whose provider is "
                f"{onchain or 'nobody (no such course)'}"
            )
            if fix:
                unlink_onchain(
                    s,
                    course,
                    settings.chain_id,
                    actor="cli:check-links",
                    reason="not the chain's provider",
                )
    typer.echo(f"{len(found)} mismatched link(s){' removed' if fix and found else ''}")
    if found and not fix:
        raise typer.Exit(1)


@app.command()
def beat(loglevel: str = typer.Option("INFO", help="Log level.")) -> None:
    """Run the scheduler: outbox relay every second, recovery and reconciliation."""
    from backend.worker.cli import run_beat

    _settings_for("beat")
    run_beat(loglevel=loglevel)


@app.command("worker-ping")
def worker_ping(timeout: float = typer.Option(5.0, help="Seconds to wait.")) -> None:
    """Exit 0 when a worker answers a ping (healthcheck)."""
    from backend.worker.cli import ping

    if not ping(timeout):
        raise typer.Exit(1)


if __name__ == "__main__":
    app()
