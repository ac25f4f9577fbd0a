"""Deploy Tuition's contracts (and, on dev chains, demo data) and write deployments/<network>.json.

An Ape script. Against a node that keeps running (so the file stays useful), e.g. anvil on 8545:

    node_modules/.bin/anvil --hardfork cancun &
    APE_FOUNDRY_HOST=http://127.0.0.1:8545 PATH=$PWD/.tools/bin:$PWD/node_modules/.bin:$PATH \\
        .venv/bin/ape run deploy --network ethereum:local:foundry

Without APE_FOUNDRY_HOST, Ape starts a throwaway anvil that stops with the script (useful as a
smoke test only). Other networks: `--network ethereum:sepolia:node --deployer <ape alias>`.

What it does: deploys CourseMarket, CourseCertificate and two TestTokens ("Esn Token"/ESN, 18
decimals and "USD Coin"/USDC, 6 decimals, both with permit); grants OPERATOR_ROLE and
ISSUER_ROLE to the backend account, GUARDIAN_ROLE to the deployer; allowlists both tokens; on dev
chains registers five demo courses from a demo provider and funds demo learners.

Idempotent: when deployments/<network>.json exists, its chain id and genesis hash match and every
contract in it still has code, nothing is deployed or registered again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from ape import accounts, chain, project
from ape.cli import ConnectedProviderCommand

ROOT = Path(__file__).resolve().parent.parent
DEPLOYMENTS = ROOT / "deployments"
LOCAL_CHAIN_IDS = (31337, 1337)

FEE_BPS = 500
ADMIN_DELAY = 2 * 24 * 3600
ETH = 10**18
ESN = 10**18
USDC = 10**6

TOKENS = {
    "ESN": ("Esn Token", "ESN", 18),
    "USDC": ("USD Coin", "USDC", 6),
}

# (title, refund window in days, price in ETH wei, in ESN, in USDC); prices 0 make it free.
DEMO_COURSES = (
    ("Solidity from Zero", 14, 2 * ETH // 100, 50 * ESN, 49 * USDC),
    ("Zero-Knowledge Proofs in Practice", 14, 5 * ETH // 100, 120 * ESN, 119 * USDC),
    ("Smart Contract Security Auditing", 7, 4 * ETH // 100, 100 * ESN, 99 * USDC),
    ("DeFi Protocol Design", 30, 3 * ETH // 100, 80 * ESN, 79 * USDC),
    ("Intro to Ethereum", 0, 0, 0, 0),
)
DEMO_FUNDS = {"ESN": 1_000 * ESN, "USDC": 1_000 * USDC}


def abi_path(name: str) -> str:
    """Where the committed ABI of `name` lives, relative to the project root."""
    return f"backend/chain/abi/{name}.json"


def network_label(ecosystem: str, network: str) -> str:
    """File name of a network: `local` for dev chains, else `sepolia` or `polygon-amoy`."""
    if network == "local":
        return "local"
    return network if ecosystem == "ethereum" else f"{ecosystem}-{network}"


def genesis_hash() -> str:
    """The genesis block hash, telling a restarted dev chain from the one a file describes."""
    return str(chain.provider.web3.eth.get_block(0)["hash"].to_0x_hex())


def reusable(path: Path) -> dict[str, Any] | None:
    """The recorded deployment if it is on this very chain and all its contracts exist."""
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    if data.get("chainId") != chain.chain_id or data.get("genesisHash") != genesis_hash():
        return None
    for info in data.get("contracts", {}).values():
        if not chain.provider.get_code(info["address"]):
            return None
    return data


def deploy(deployer: Any, backend: str, treasury: str, demo: bool, label: str) -> dict[str, Any]:
    """Deploy everything and return the deployment file's content."""
    deploy_block = chain.blocks.head.number + 1
    market = deployer.deploy(project.CourseMarket, deployer, treasury, FEE_BPS, ADMIN_DELAY)
    certificate = deployer.deploy(project.CourseCertificate, deployer, market)
    tokens = {
        key: deployer.deploy(project.TestToken, name, symbol, decimals)
        for key, (name, symbol, decimals) in TOKENS.items()
    }
    market.grantRole(market.OPERATOR_ROLE(), backend, sender=deployer)
    market.grantRole(market.GUARDIAN_ROLE(), deployer, sender=deployer)
    certificate.grantRole(certificate.ISSUER_ROLE(), backend, sender=deployer)
    for token in tokens.values():
        market.setTokenAllowed(token, True, sender=deployer)

    data: dict[str, Any] = {
        "chainId": chain.chain_id,
        "network": label,
        "genesisHash": genesis_hash(),
        "deployBlock": deploy_block,
        "contracts": {
            "CourseMarket": {"address": market.address, "abi": abi_path("CourseMarket")},
            "CourseCertificate": {
                "address": certificate.address,
                "abi": abi_path("CourseCertificate"),
            },
            **{
                key: {
                    "address": token.address,
                    "abi": abi_path("TestToken"),
                    "name": TOKENS[key][0],
                    "symbol": TOKENS[key][1],
                    "decimals": TOKENS[key][2],
                }
                for key, token in tokens.items()
            },
        },
        "roles": {
            "admin": deployer.address,
            "guardian": deployer.address,
            "operator": backend,
            "issuer": backend,
            "treasury": treasury,
        },
    }
    if demo:
        data["demo"] = seed_demo(deployer, market, tokens)
    return data


def seed_demo(deployer: Any, market: Any, tokens: dict[str, Any]) -> dict[str, Any]:
    """Register the demo courses from test account 2 and fund test accounts 3-5."""
    provider = accounts.test_accounts[2]
    learners = [accounts.test_accounts[i] for i in (3, 4, 5)]
    course_ids = []
    for title, days, eth, esn, usdc in DEMO_COURSES:
        market.createCourse(title, days * 24 * 3600, sender=provider)
        course_id = market.courseCount()
        market.setPrice(course_id, "0x" + "00" * 20, eth, sender=provider)
        market.setPrice(course_id, tokens["ESN"], esn, sender=provider)
        market.setPrice(course_id, tokens["USDC"], usdc, sender=provider)
        course_ids.append(course_id)
    for learner in learners:
        for key, amount in DEMO_FUNDS.items():
            tokens[key].mint(learner, amount, sender=deployer)
    return {
        "provider": provider.address,
        "learners": [learner.address for learner in learners],
        "courses": course_ids,
    }


@click.command(cls=ConnectedProviderCommand)
@click.option("--deployer", "deployer_alias", help="Ape account alias (default: test account 0).")
@click.option("--backend", help="Gets OPERATOR_ROLE and ISSUER_ROLE (default: test account 1).")
@click.option("--treasury", help="Receives platform fees (default: the deployer).")
@click.option("--demo/--no-demo", default=None, help="Seed demo data (default: on dev chains).")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Deployment file (default: deployments/<network>.json).",
)
def cli(ecosystem, network, deployer_alias, backend, treasury, demo, output):
    """Deploy (or reuse) the contracts and write deployments/<network>.json."""
    local = chain.chain_id in LOCAL_CHAIN_IDS
    label = network_label(ecosystem.name, network.name)
    path = output or DEPLOYMENTS / f"{label}.json"
    if (existing := reusable(path)) is not None:
        click.echo(f"deployment on chain {existing['chainId']} is live: reusing {path.name}")
        click.echo(json.dumps(existing["contracts"], indent=2))
        return
    if deployer_alias:
        deployer = accounts.load(deployer_alias)
    elif local:
        deployer = accounts.test_accounts[0]
    else:
        raise click.UsageError("--deployer is required outside dev chains")
    backend = backend or str(accounts.test_accounts[1].address)
    data = deploy(
        deployer,
        backend=backend,
        treasury=treasury or str(deployer.address),
        demo=local if demo is None else demo,
        label=label,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)  # atomic: readers never see half a file
    click.echo(f"wrote {path}")
    click.echo(json.dumps(data["contracts"], indent=2))
