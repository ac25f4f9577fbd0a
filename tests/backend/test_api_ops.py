"""Operations endpoints, the one error shape, request ids, metrics, OpenAPI."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from support.api import PUBLIC_URL, Api, make_settings
from support.factories import account, make_course

from backend.app import create_app
from backend.chain.deployment import Deployment
from backend.core.db import Database
from backend.core.ratelimit import MemoryRateLimiter

pytestmark = pytest.mark.anyio


async def test_healthz_answers_ok(api: Api) -> None:
    async with api.client() as client:
        response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_reports_the_migrated_head(api: Api) -> None:
    async with api.client() as client:
        response = await client.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "ready"


async def test_readyz_is_503_until_migrations_ran(api: Api, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    database = Database.from_url(url)
    app = create_app(
        make_settings(url),
        database=database,
        chain=api.chain,
        rate_limiter=MemoryRateLimiter(10),
        deployment=Deployment(),
        seed=False,
    )
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as client:
            response = await client.get("/readyz")
    finally:
        await database.dispose()
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "migrations_pending"


async def _readyz(app: Any) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as client:
        return await client.get("/readyz")


async def test_readyz_is_503_while_redis_does_not_answer(api: Api) -> None:
    closed = f"redis://127.0.0.1:{_closed_port()}/0"
    settings = api.settings.model_copy(update={"redis_url": SecretStr(closed)})
    app = create_app(
        settings,
        database=api.db,
        chain=api.chain,
        rate_limiter=MemoryRateLimiter(10),
        deployment=Deployment(chain_id=1, market="0x" + "11" * 20, certificate="0x" + "22" * 20),
        seed=False,
    )
    response = await _readyz(app)
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "broker_unavailable"


async def test_readyz_waits_for_the_deployment_file_and_sees_it_without_a_restart(
    api: Api, tmp_path: Path
) -> None:
    settings = api.settings.model_copy(
        update={"deployments_dir": tmp_path, "network": "later", "redis_url": None}
    )
    app = create_app(
        settings, database=api.db, chain=api.chain, rate_limiter=MemoryRateLimiter(10), seed=False
    )
    before = await _readyz(app)
    assert before.status_code == 503
    assert before.json()["error"]["code"] == "not_deployed"

    # `tuition deploy` finishes after the API started.
    contracts = {
        "CourseMarket": {"address": "0x" + "11" * 20},
        "CourseCertificate": {"address": "0x" + "22" * 20},
    }
    (tmp_path / "later.json").write_text(json.dumps({"chainId": 31337, "contracts": contracts}))
    after = await _readyz(app)
    assert after.status_code == 200, after.text
    assert app.state.services.deployment.market is not None


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/api/v1/nothing-here", 404, "not_found"),
        ("DELETE", "/api/v1/courses", 405, "method_not_allowed"),
        ("GET", "/api/v1/courses/not-a-number", 422, "validation_error"),
        ("POST", "/api/v1/webhooks/stripe", 400, "invalid_signature"),
    ],
)
async def test_framework_errors_use_the_api_error_shape(
    api: Api, method: str, path: str, status: int, code: str
) -> None:
    async with api.client() as client:
        response = await client.request(method, path)
    assert response.status_code == status
    body = response.json()
    assert list(body) == ["error"]
    assert body["error"]["code"] == code and body["error"]["message"]


async def test_unexpected_exceptions_become_a_500_in_the_error_shape(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    from backend.catalog import service

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("database on fire")

    monkeypatch.setattr(service, "list_published", boom)
    async with api.client() as client:
        response = await client.get("/api/v1/courses")
    assert response.status_code == 500
    assert response.json() == {
        "error": {"code": "internal_error", "message": "Something went wrong on our side."}
    }
    assert "fire" not in response.text


def _terminated() -> Exception:
    from sqlalchemy.exc import OperationalError

    return OperationalError(
        "SELECT 1", {}, Exception("terminating connection due to administrator command")
    )


def _starting_up() -> Exception:
    import asyncpg.exceptions

    return asyncpg.exceptions.CannotConnectNowError("the database system is starting up")


def _shutting_down_wrapped() -> Exception:
    """What SQLAlchemy's asyncpg dialect raises for a new connection while PostgreSQL stops."""
    import asyncpg.exceptions
    from sqlalchemy.exc import DBAPIError

    driver = asyncpg.exceptions.CannotConnectNowError("the database system is shutting down")
    wrapper = Exception("the database system is shutting down")
    wrapper.__cause__ = driver
    return DBAPIError("connect", {}, wrapper)


@pytest.mark.parametrize(
    "error",
    [
        _terminated,
        _starting_up,
        _shutting_down_wrapped,
        lambda: ConnectionRefusedError(111, "Connection refused"),
    ],
    ids=["connection-terminated", "starting-up", "shutting-down", "connection-refused"],
)
async def test_a_database_that_went_away_is_a_503_with_a_retry_hint(
    api: Api, monkeypatch: pytest.MonkeyPatch, error: Callable[[], Exception]
) -> None:
    """A restart or failover of PostgreSQL: the client is told to repeat, never a bare 500.

    (Found by scripts/fault_run.py: a new connection's refusal arrived as asyncpg's own error.)
    """
    from backend.catalog import service

    def restarting(*args: object, **kwargs: object) -> None:
        raise error()

    monkeypatch.setattr(service, "list_published", restarting)
    async with api.client() as client:
        response = await client.get("/api/v1/courses")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "2"
    assert response.json()["error"]["code"] == "database_unavailable"
    assert "administrator" not in response.text and "refused" not in response.text


async def test_any_other_database_error_is_still_a_500(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.exc import DBAPIError

    from backend.catalog import service

    def broken(*args: object, **kwargs: object) -> None:
        raise DBAPIError("SELECT nope", {}, Exception('column "nope" does not exist'))

    monkeypatch.setattr(service, "list_published", broken)
    async with api.client() as client:
        response = await client.get("/api/v1/courses")
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"


async def test_an_unexpected_exception_does_not_escape_to_the_server(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing reaches the server, which would drop the client's keep-alive connection."""
    from backend.catalog import service

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("database on fire")

    monkeypatch.setattr(service, "list_published", boom)
    transport = httpx.ASGITransport(app=api.app, raise_app_exceptions=True)
    async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as client:
        first = await client.get("/api/v1/courses")
        second = await client.get("/healthz")
    assert first.status_code == 500 and first.json()["error"]["code"] == "internal_error"
    assert first.headers["x-request-id"]
    assert second.status_code == 200


async def test_request_id_is_echoed_or_generated(api: Api) -> None:
    async with api.client() as client:
        echoed = await client.get("/healthz", headers={"X-Request-ID": "trace-42"})
        generated = await client.get("/healthz")
        unsafe = await client.get("/healthz", headers={"X-Request-ID": "a b\tc" * 50})
    assert echoed.headers["x-request-id"] == "trace-42"
    assert re.fullmatch(r"[0-9a-f]{32}", generated.headers["x-request-id"])
    assert re.fullmatch(r"[0-9a-f]{32}", unsafe.headers["x-request-id"])


async def test_metrics_expose_latency_by_route_template(api: Api) -> None:
    course = await api.run(make_course, provider=account("provider").address)
    async with api.client() as client:
        await client.get(
            f"/api/v1/courses/{course.id}/access", params={"address": account("x").address}
        )
        body = (await client.get("/metrics")).text
    assert "tuition_http_request_duration_seconds_bucket" in body
    assert 'route="/api/v1/courses/{course_id}/access"' in body
    assert f"/courses/{course.id}/access" not in body  # templates, not raw paths


async def test_openapi_documents_every_api_route_with_schemas(api: Api) -> None:
    async with api.client() as client:
        spec = (await client.get("/openapi.json")).json()
        docs = await client.get("/docs")
    assert docs.status_code == 200
    paths = spec["paths"]
    for path in (
        "/api/v1/auth/nonce",
        "/api/v1/auth/verify",
        "/api/v1/courses/{course_id}/access",
        "/api/v1/checkout/stripe",
        "/api/v1/webhooks/stripe",
        "/api/v1/provider/sales",
        "/api/v1/orders/crypto",
    ):
        assert path in paths, path
    access = paths["/api/v1/courses/{course_id}/access"]["get"]
    schema = access["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema["$ref"].endswith("/AccessOut")
    assert "hasAccess" in spec["components"]["schemas"]["AccessOut"]["properties"]
    assert {(p["name"], p["in"]) for p in access["parameters"]} == {
        ("course_id", "path"),
        ("address", "query"),
    }


async def test_startup_seeds_the_native_coin_and_deployed_tokens(api: Api) -> None:
    from sqlalchemy import delete, select

    from backend.catalog.models import Token
    from backend.chain.deployment import TokenInfo

    await api.run(lambda s: s.execute(delete(Token)))
    deployment = Deployment(
        tokens=(TokenInfo(address="0x" + "ab" * 20, symbol="ESN", decimals=18, name="Esn"),)
    )
    app = create_app(
        api.settings,
        database=api.db,
        chain=api.chain,
        rate_limiter=MemoryRateLimiter(10),
        deployment=deployment,
    )
    async with app.router.lifespan_context(app):
        pass
    tokens = await api.query(
        lambda s: {t.symbol: (t.address, t.decimals) for t in s.scalars(select(Token))}
    )
    assert tokens["ETH"] == ("0x0000000000000000000000000000000000000000", 18)
    assert tokens["ESN"][1] == 18


def test_openapi_lists_each_operations_errors_with_the_one_error_body(shared_app: Any) -> None:
    spec = shared_app.openapi()
    assert "ErrorOut" in spec["components"]["schemas"]
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    ref = {"$ref": "#/components/schemas/ErrorOut"}
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            for code, entry in responses.items():
                if int(code) >= 400:
                    assert entry["content"]["application/json"]["schema"] == ref, (path, code)
            if path.startswith(("/api/v1/provider/", "/api/v1/me", "/api/v1/admin")):
                assert "401" in responses, f"{method} {path} needs sign-in"
            if path.startswith("/api/v1/admin"):
                assert "403" in responses, f"{method} {path} is for admins"
            if "{" in path:
                assert "404" in responses, f"{method} {path} takes an id"
