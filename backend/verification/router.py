"""/api/v1/certificates/{token_id}/verification: the public verification, from the chain alone.

No sign-in; rate-limited per client IP; the GET answer is cacheable for a few seconds only, so a
revocation shows within seconds. The same function answers `tuition verify`.
"""

from __future__ import annotations

from typing import Annotated, Any

import anyio
import requests
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import Field
from web3.exceptions import Web3Exception

from backend.api.deps import ChainIdQuery, ServicesDep, client_ip
from backend.core.errors import InvalidInputError, RateLimitedError, ServiceUnavailableError
from backend.core.openapi import errors
from backend.core.schemas import AddressStr, ApiInput, ApiModel
from backend.verification.service import (
    ChainTarget,
    Report,
    chain_targets,
    options_for,
    verify_on_chains,
)

router = APIRouter(prefix="/certificates", tags=["verification"])

# A revocation must reach verifiers quickly: caches may keep an answer this long (seconds).
MAX_AGE = 5
MAX_TOKEN_ID = 2**256 - 1

TokenIdPath = Annotated[str, Path(pattern=r"^[0-9]{1,78}$", description="The token id, decimal.")]


class StepOut(ApiModel):
    """One step: passed, failed or not_checked, with the facts behind it."""

    name: str
    status: str
    detail: str
    facts: dict[str, Any]


class VerificationOut(ApiModel):
    """The verification of one certificate."""

    chain_id: int
    contract: str
    token_id: str
    verdict: str
    valid: bool
    steps: list[StepOut]
    # The chains looked at when no chainId was given (the certificate's is the last).
    searched_chains: list[int]


class DocumentIn(ApiInput):
    """The certificate record (JSON) to check against the on-chain hash."""

    record: dict[str, Any] = Field(description="The learner's certificate record, as issued.")


async def verification_rate_limit(request: Request, services: ServicesDep) -> None:
    """Throttle verifications per client IP (429 in the API's error shape)."""
    allowed, wait = await services.rate_limiter.allow(f"verify:{client_ip(request)}")
    if not allowed:
        retry = max(1, int(wait + 0.999))
        raise RateLimitedError(
            f"too many verifications; retry in {retry} s", headers={"Retry-After": str(retry)}
        )


async def _verify(
    services: ServicesDep,
    token_id: str,
    contract: str | None,
    document: bytes | None,
    chain_id: int | None,
) -> VerificationOut:
    number = int(token_id)
    if number > MAX_TOKEN_ID:
        raise InvalidInputError("the token id is larger than 2**256 - 1", code="validation_error")
    settings = services.settings
    if chain_id is not None:
        chain_id = services.chain_id_of(chain_id)
    targets = chain_targets(
        settings,
        chain=chain_id,
        deployment_of=lambda s: services.deployment_on(s.chain_id),
    )
    if contract is not None:
        # Another contract than ours: on the chain given, else the API's own.
        own = services.chain_id_of(chain_id)
        network = settings.network_by_chain(own) or settings.current_network
        on = settings.for_network(network.name)
        options = options_for(on, services.deployment_on(own))
        targets = [ChainTarget(own, network.name, on.rpc_url, contract, options)]
    if not targets:
        services.deployment.require_certificate()  # the 503 "not deployed" answer
    try:
        report: Report = await anyio.to_thread.run_sync(
            lambda: verify_on_chains(targets, number, document)
        )
    except (requests.RequestException, OSError, Web3Exception) as exc:
        raise ServiceUnavailableError(
            "the chain cannot be reached; try again shortly", code="chain_unavailable"
        ) from exc
    return VerificationOut.model_validate(report.as_json())


@router.get(
    "/{token_id}/verification",
    response_model=VerificationOut,
    responses=errors(422, 429, 503),
    dependencies=[Depends(verification_rate_limit)],
)
async def verify(
    token_id: TokenIdPath,
    response: Response,
    services: ServicesDep,
    contract: Annotated[AddressStr | None, Query(description="Default: ours.")] = None,
    chain_id: ChainIdQuery = None,
) -> VerificationOut:
    """Verify certificate `token_id` step by step from the chain (exists, status, issuer,
    integrity (not checked here: POST a document), holder) and give the verdict. Without
    `chainId` every configured chain is searched (`searchedChains`)."""
    out = await _verify(services, token_id, contract, None, chain_id)
    response.headers["Cache-Control"] = f"public, max-age={MAX_AGE}"
    return out


@router.post(
    "/{token_id}/verification",
    response_model=VerificationOut,
    responses=errors(422, 429, 503),
    dependencies=[Depends(verification_rate_limit)],
)
async def verify_document(
    token_id: TokenIdPath,
    body: DocumentIn,
    response: Response,
    services: ServicesDep,
    contract: Annotated[AddressStr | None, Query(description="Default: ours.")] = None,
    chain_id: ChainIdQuery = None,
) -> VerificationOut:
    """The same verification, with the integrity step checking `record` against the on-chain
    hash (the record is not stored)."""
    import json

    document = json.dumps(body.record).encode()
    out = await _verify(services, token_id, contract, document, chain_id)
    response.headers["Cache-Control"] = "no-store"
    return out
