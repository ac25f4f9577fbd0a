"""The public catalog: pagination, prices on both rails, drafts, errors."""

from __future__ import annotations

import pytest
from support.api import Api
from support.factories import NATIVE, USDC, account, make_course

from backend.catalog.models import CourseStatus

pytestmark = pytest.mark.anyio

PROVIDER = account("provider")


async def test_courses_list_shows_published_courses_with_prices_as_strings(api: Api) -> None:
    course = await api.run(
        make_course,
        provider=PROVIDER.address,
        title="Solidity",
        onchain_id=7,
        fiat_price=4900,
        lessons=2,
        prices={NATIVE: 10**16, USDC: 49_000_000},
    )
    await api.run(make_course, provider=PROVIDER.address, status=CourseStatus.DRAFT)
    async with api.client() as client:
        response = await client.get("/api/v1/courses")
    assert response.status_code == 200
    body = response.json()
    assert [c["id"] for c in body["items"]] == [course.id]
    item = body["items"][0]
    assert item["fiatPrice"] == {"amount": "4900", "currency": "usd"}
    assert item["onchainId"] == 7 and item["lessonCount"] == 2
    prices = {p["token"]["symbol"]: p for p in item["prices"]}
    assert prices["ETH"]["price"] == "10000000000000000"
    assert prices["ETH"]["token"]["decimals"] == 18
    assert prices["USDC"]["price"] == "49000000"
    assert prices["USDC"]["token"]["decimals"] == 6
    assert body["nextCursor"] is None


async def test_courses_list_paginates_with_a_cursor(api: Api) -> None:
    ids = [(await api.run(make_course, provider=PROVIDER.address)).id for _ in range(5)]
    seen: list[int] = []
    cursor = None
    async with api.client() as client:
        for _ in range(3):
            params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
            page = (await client.get("/api/v1/courses", params=params)).json()
            seen += [c["id"] for c in page["items"]]
            cursor = page["nextCursor"]
            if cursor is None:
                break
    assert seen == ids
    assert cursor is None


@pytest.mark.parametrize(
    "params", [{"limit": 0}, {"limit": 101}, {"limit": "x"}, {"cursor": "abc"}]
)
async def test_bad_pagination_parameters_get_a_validation_error(
    api: Api, params: dict[str, object]
) -> None:
    async with api.client() as client:
        response = await client.get("/api/v1/courses", params=params)
    assert response.status_code == 422
    assert response.json()["error"]["code"] in {"validation_error", "bad_cursor"}


async def test_course_detail_has_the_lesson_outline_but_not_bodies(api: Api) -> None:
    course = await api.run(make_course, provider=PROVIDER.address, lessons=3)
    async with api.client() as client:
        response = await client.get(f"/api/v1/courses/{course.id}")
    body = response.json()
    assert response.status_code == 200
    assert body["lessons"] == [
        {"position": 1, "title": "Lesson 1"},
        {"position": 2, "title": "Lesson 2"},
        {"position": 3, "title": "Lesson 3"},
    ]
    assert "Body of lesson" not in response.text


async def test_draft_course_is_visible_only_to_its_provider(api: Api) -> None:
    course = await api.run(make_course, provider=PROVIDER.address, status=CourseStatus.DRAFT)
    async with api.client() as anonymous:
        hidden = await anonymous.get(f"/api/v1/courses/{course.id}")
    async with api.user(PROVIDER) as provider:
        visible = await provider.get(f"/api/v1/courses/{course.id}")
    assert hidden.status_code == 404
    assert hidden.json()["error"]["code"] == "course_not_found"
    assert visible.status_code == 200


@pytest.mark.parametrize("path", ["/api/v1/courses/999999", "/api/v1/courses/0"])
async def test_unknown_or_invalid_course_id_gets_the_error_shape(api: Api, path: str) -> None:
    async with api.client() as client:
        response = await client.get(path)
    assert response.status_code in (404, 422)
    assert set(response.json()) == {"error"}
    assert {"code", "message"} <= set(response.json()["error"])
