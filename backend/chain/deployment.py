"""What the API needs from `deployments/<network>.json` (written by `tuition deploy`)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from backend.core.config import Settings
from backend.core.security import InvalidAddressError, checksum_address

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TokenInfo:
    """An ERC-20 the deployment knows about."""

    address: str
    symbol: str
    decimals: int
    name: str


@dataclass(frozen=True)
class Deployment:
    """Contract addresses of one network (None when not deployed)."""

    chain_id: int | None = None
    market: str | None = None
    certificate: str | None = None
    tokens: tuple[TokenInfo, ...] = field(default_factory=tuple)


def _address(value: object) -> str | None:
    if isinstance(value, dict):
        value = value.get("address")
    if not isinstance(value, str):
        return None
    try:
        return checksum_address(value)
    except InvalidAddressError:
        return None


def load_deployment(path: Path) -> Deployment:
    """Parse a deployment file; a missing or unreadable file gives an empty deployment."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return Deployment()
    except (OSError, ValueError) as exc:
        logger.warning("unreadable deployment file %s: %s", path, exc)
        return Deployment()
    contracts = data.get("contracts", {}) if isinstance(data, dict) else {}
    tokens = []
    for name, info in contracts.items():
        if isinstance(info, dict) and "symbol" in info and "decimals" in info:
            address = _address(info)
            if address is not None:
                tokens.append(
                    TokenInfo(
                        address=address,
                        symbol=str(info["symbol"]),
                        decimals=int(info["decimals"]),
                        name=str(info.get("name") or name),
                    )
                )
    chain_id = data.get("chainId") if isinstance(data, dict) else None
    return Deployment(
        chain_id=int(chain_id) if isinstance(chain_id, int) else None,
        market=_address(contracts.get("CourseMarket")),
        certificate=_address(contracts.get("CourseCertificate")),
        tokens=tuple(tokens),
    )


def deployment_for(settings: Settings) -> Deployment:
    """The deployment of the configured network."""
    return load_deployment(settings.deployment_file)
