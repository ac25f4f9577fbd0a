"""GET /api/v1/config: what the web app needs before it can talk to the chain.

Chain id and name, the RPC URL for read-only calls (the verify page reads certificates from the
chain itself, not from this API), contract addresses, accepted tokens and the WalletConnect
project id. Built from the settings and `deployments/<network>.json` (re-read when it changes).
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from backend.chain.deployment import current_deployment
from backend.core.config import Settings, get_settings
from backend.core.schemas import ApiModel
from backend.core.security import NATIVE_TOKEN

router = APIRouter(prefix="/api/v1", tags=["config"])


# Names and native coins of the chains Tuition knows; settings may override both.
KNOWN_CHAINS: dict[int, tuple[str, str, str]] = {
    1: ("Ethereum", "Ether", "ETH"),
    11155111: ("Sepolia", "Sepolia Ether", "ETH"),
    137: ("Polygon", "POL", "POL"),
    80002: ("Polygon Amoy", "POL", "POL"),
    8453: ("Base", "Ether", "ETH"),
    84532: ("Base Sepolia", "Ether", "ETH"),
    31337: ("Anvil (local)", "Ether", "ETH"),
}
KNOWN_EXPLORERS: dict[int, str] = {
    1: "https://etherscan.io",
    11155111: "https://sepolia.etherscan.io",
    137: "https://polygonscan.com",
    80002: "https://amoy.polygonscan.com",
    8453: "https://basescan.org",
    84532: "https://sepolia.basescan.org",
}
TOKEN_NAMES = {"ESN": "Esn Token", "USDC": "USD Coin"}


class NativeCurrency(ApiModel):
    name: str
    symbol: str
    decimals: int


class TokenOut(ApiModel):
    address: str
    symbol: str
    name: str
    decimals: int
    native: bool


class ContractsOut(ApiModel):
    market: str | None
    certificate: str | None


class ChainConfig(ApiModel):
    """One chain the app can use: what a wallet needs to add and switch to it, its contracts
    and payment tokens."""

    chain_id: int
    network: str
    chain_name: str
    rpc_url: str
    native_currency: NativeCurrency
    block_explorer_url: str | None
    contracts: ContractsOut
    # Where the contracts' events start (the verify page looks for revocations from here).
    deploy_block: int = 0
    tokens: list[TokenOut]
    deployed: bool


class PublicConfig(ChainConfig):
    """Public, cacheable configuration of the web app (no secrets): the API's own chain at the
    top level, every configured chain (that one first) in `networks`."""

    public_url: str
    wallet_connect_project_id: str | None
    stripe_enabled: bool
    networks: list[ChainConfig]


def build_config(settings: Settings) -> PublicConfig:
    """The configuration for `settings` (pure apart from reading the deployment files)."""
    own = _chain_config(settings)
    others = [
        _chain_config(settings.for_network(n.name))
        for n in settings.networks
        if n.name != settings.network
    ]
    stripe_key = settings.stripe_secret_key.get_secret_value()
    return PublicConfig(
        **own.model_dump(),
        public_url=settings.public_url.rstrip("/"),
        wallet_connect_project_id=settings.walletconnect_project_id or None,
        stripe_enabled=bool(stripe_key),
        networks=[own, *others],
    )


def _chain_config(settings: Settings) -> ChainConfig:
    """The settings' own network as the app sees it."""
    deployment = current_deployment(settings.deployment_file)
    chain_id = deployment.chain_id or settings.chain_id
    known_name, native_name, native_symbol = KNOWN_CHAINS.get(
        chain_id, (f"Chain {chain_id}", "Ether", "ETH")
    )
    network = settings.current_network
    native_symbol = network.native_symbol or native_symbol
    native_name = network.native_name or native_name
    decimals = network.native_decimals
    tokens = [
        TokenOut(
            address=NATIVE_TOKEN,
            symbol=native_symbol,
            name=native_name,
            decimals=decimals,
            native=True,
        )
    ]
    for token in deployment.tokens:
        # The deploy script names its test tokens by symbol only: give those their full names.
        name = token.name
        if name == token.symbol:
            name = TOKEN_NAMES.get(name, name)
        tokens.append(
            TokenOut(
                address=token.address,
                symbol=token.symbol,
                name=name,
                decimals=token.decimals,
                native=False,
            )
        )
    return ChainConfig(
        chain_id=chain_id,
        network=settings.network,
        chain_name=network.chain_name or known_name,
        # The browser's read-only endpoint; in production a public RPC rather than the node the
        # backend uses (the network's public_rpc_url).
        rpc_url=network.public_rpc_url or settings.rpc_url,
        native_currency=NativeCurrency(name=native_name, symbol=native_symbol, decimals=decimals),
        block_explorer_url=network.explorer_url or KNOWN_EXPLORERS.get(chain_id),
        contracts=ContractsOut(market=deployment.market, certificate=deployment.certificate),
        deploy_block=deployment.deploy_block,
        tokens=tokens,
        deployed=deployment.market is not None,
    )


@router.get("/config", response_model=PublicConfig, response_model_by_alias=True)
async def get_config(request: Request, response: Response) -> PublicConfig:
    """Chain, contracts, tokens and wallet settings for the web app."""
    response.headers["Cache-Control"] = "public, max-age=60"
    return build_config(app_settings(request))


def app_settings(request: Request) -> Settings:
    """The settings the app was built with (tests pass their own), else the process's."""
    services = getattr(request.app.state, "services", None)
    settings = getattr(services, "settings", None)
    return settings if isinstance(settings, Settings) else get_settings()
