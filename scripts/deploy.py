"""`ape run deploy`: the deployment of `tuition deploy`, on the network Ape is connected to.

Against a node that keeps running (so the deployment file stays useful), e.g. anvil on 8545:

    node_modules/.bin/anvil --hardfork cancun &
    APE_FOUNDRY_HOST=http://127.0.0.1:8545 PATH=$PWD/.tools/bin:$PWD/node_modules/.bin:$PATH \\
        .venv/bin/ape run deploy --network ethereum:local:foundry

The work is done by `backend.chain.deploy.deploy_demo` from the committed artifacts (see that
module): market, certificates, ESN and USDC test tokens, roles, allowlist, and on dev chains the
demo catalog and funded demo learners. Local chains use anvil's well-known keys (Ape's test
mnemonic is anvil's); other chains take keys from TUITION_DEPLOYER_PRIVATE_KEY and
TUITION_OPERATOR_PRIVATE_KEY through `tuition deploy`. Idempotent: a deployment whose contracts
still have code on the same chain is reused.
"""

from __future__ import annotations

import click
from ape.cli import ConnectedProviderCommand

from backend.chain.deploy import deploy_demo
from backend.core.config import get_settings

LOCAL_CHAIN_IDS = (31337, 1337)


@click.command(cls=ConnectedProviderCommand)
@click.option("--demo/--no-demo", default=True, help="Register demo courses, fund learners.")
def cli(provider, demo: bool) -> None:  # type: ignore[no-untyped-def]
    """Deploy (or reuse) Tuition's contracts and write deployments/<network>.json."""
    if provider.chain_id not in LOCAL_CHAIN_IDS:
        raise click.ClickException("use `tuition deploy` with TUITION_* keys for real chains")
    settings = get_settings()
    data = deploy_demo(
        rpc_url=provider.uri, network="local", deployments_dir=settings.deployments_dir, demo=demo
    )
    for name, info in data["contracts"].items():
        click.echo(f"{name:<18}{info['address']}")
