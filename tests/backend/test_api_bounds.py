"""Integers are bounded where they enter: out-of-range input is a 422 naming the field, never a
database overflow (500) or a dropped connection."""

from __future__ import annotations

from typing import Any

import pytest
from support.api import Api
from support.factories import account

pytestmark = pytest.mark.anyio

USER = account("bounds-user")
HUGE = [2**31, 2**63, 2**64, 2**96 - 1, 10**30]


@pytest.mark.parametrize("value", HUGE)
@pytest.mark.parametrize(
    ("method", "path", "extra"),
    [
        ("POST", "/api/v1/orders/crypto", {"token": "0x" + "00" * 20}),
        ("POST", "/api/v1/checkout/stripe", {}),
        ("POST", "/api/v1/admin/entitlements/grant", {"address": USER.address, "reason": "x" * 5}),
        ("POST", "/api/v1/admin/entitlements/revoke", {"address": USER.address, "reason": "x" * 5}),
    ],
)
async def test_out_of_range_course_ids_in_bodies_are_422(
    api: Api, method: str, path: str, extra: dict[str, Any], value: int
) -> None:
    api.app.state.services.admins = frozenset({USER.address})
    async with api.user(USER) as client:
        response = await client.request(method, path, json={"courseId": value, **extra})
    assert response.status_code == 422, response.text
    assert "courseId" in response.text


@pytest.mark.parametrize("cursor", ["99999999999999999999", str(2**31), "³", "١٢", "-1", "1.0"])
async def test_course_list_cursor_is_ascii_digits_within_the_id_column(
    api: Api, cursor: str
) -> None:
    async with api.client() as client:
        response = await client.get("/api/v1/courses", params={"cursor": cursor})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] in ("bad_cursor", "validation_error")


@pytest.mark.parametrize("before", [str(2**63), "99999999999999999999", "0"])
async def test_payout_ledger_before_is_within_the_id_column(api: Api, before: str) -> None:
    async with api.user(USER) as client:
        response = await client.get("/api/v1/provider/payouts", params={"before": before})
    assert response.status_code == 422, response.text
    assert "before" in response.text


@pytest.mark.parametrize("course_id", [str(2**31), str(2**63), "³"])
async def test_out_of_range_course_ids_in_paths_are_422(api: Api, course_id: str) -> None:
    async with api.user(USER) as client:
        for path in (
            f"/api/v1/courses/{course_id}",
            f"/api/v1/courses/{course_id}/progress",
            f"/api/v1/courses/{course_id}/access?address={USER.address}",
        ):
            response = await client.get(path)
            assert response.status_code == 422, (path, response.text)
