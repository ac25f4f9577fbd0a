"""Building catalog response bodies from the database (run inside `AsyncSession.run_sync`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backend.catalog import service
from backend.catalog.models import Course, Lesson, Token
from backend.catalog.schemas import (
    CourseChainOut,
    CourseDetailOut,
    CourseOut,
    CoursePageOut,
    FiatPriceOut,
    LessonSummaryOut,
    TokenOut,
    TokenPriceOut,
)
from backend.catalog.service import TokenKey, list_lessons, prices_for, tokens_by_key

# Which of these providers can be paid out by card (Services.card_ready); None: all of them.
CardGate = Callable[[Session, set[str]], set[str]] | None


def token_out(tokens: Mapping[TokenKey, Token], chain_id: int, address: str) -> TokenOut:
    """Metadata of token `address` of chain `chain_id`, with a placeholder for tokens nobody
    described."""
    token = tokens.get((chain_id, address))
    if token is None:
        return TokenOut(
            chain_id=chain_id, address=address, symbol="?", decimals=18, name="Unknown token"
        )
    return TokenOut.model_validate(token)


def courses_out(
    session: Session, courses: Sequence[Course], *, chain_id: int, card_gate: CardGate = None
) -> list[CourseOut]:
    """Courses with prices and lesson counts (a few queries whatever the page size).

    `onchainId` is the course's id on `chain_id` (the API's network); `chains` lists every
    chain it is registered on.

    With a `card_gate` (buyers' views under `TUITION_CARD_REQUIRES_CONNECT`), the card price of
    a course whose provider cannot be paid out by card yet is not offered.
    """
    ids = [c.id for c in courses]
    card_ready = card_gate(session, {c.provider for c in courses}) if card_gate else None
    prices = prices_for(session, ids, chain_id)
    tokens = tokens_by_key(session)
    counts: dict[int, int] = {}
    if ids:
        counts = {
            cid: n
            for cid, n in session.execute(
                select(Lesson.course_id, func.count(Lesson.id))
                .where(Lesson.course_id.in_(ids))
                .group_by(Lesson.course_id)
            ).all()
        }
    return [
        CourseOut(
            id=c.id,
            onchain_id=c.onchain_id_on(chain_id),
            chains=[
                CourseChainOut(chain_id=r.chain_id, onchain_id=r.onchain_id, listed=r.listed)
                for r in c.chains
            ],
            provider=c.provider,
            title=c.title,
            description=c.description,
            status=c.status,
            refund_window=c.refund_window,
            certificate_mode=c.certificate_mode,
            fiat_price=(
                FiatPriceOut(amount=c.fiat_price, currency=c.fiat_currency)
                if c.fiat_price is not None
                and c.fiat_currency
                and (card_ready is None or c.provider in card_ready)
                else None
            ),
            prices=[
                TokenPriceOut(
                    token=token_out(tokens, p.chain_id, p.token),
                    price=p.price,
                    updated_block=p.updated_block,
                )
                for p in prices[c.id]
            ],
            lesson_count=counts.get(c.id, 0),
            created_at=c.created_at,
        )
        for c in courses
    ]


def course_detail_out(
    session: Session, course: Course, *, chain_id: int, card_gate: CardGate = None
) -> CourseDetailOut:
    """One course with its lesson outline."""
    base = courses_out(session, [course], chain_id=chain_id, card_gate=card_gate)[0]
    lessons = [
        LessonSummaryOut(position=lesson.position, title=lesson.title)
        for lesson in list_lessons(session, course.id)
    ]
    return CourseDetailOut(**base.model_dump(), lessons=lessons)


def course_page_out(
    session: Session,
    *,
    limit: int,
    after_id: int | None,
    chain_id: int,
    card_gate: CardGate = None,
) -> CoursePageOut:
    """A page of published courses after the course `after_id`, with the next page's cursor."""
    courses = service.list_published(session, limit=limit + 1, after_id=after_id)
    page, more = courses[:limit], len(courses) > limit
    return CoursePageOut(
        items=courses_out(session, page, chain_id=chain_id, card_gate=card_gate),
        next_cursor=str(page[-1].id) if more and page else None,
    )


def visible_course_out(
    session: Session,
    course_id: int,
    viewer: str | None,
    *,
    chain_id: int,
    card_gate: CardGate = None,
) -> CourseDetailOut:
    """A course with prices and lesson outline (a draft only for its provider)."""
    return course_detail_out(
        session,
        service.get_visible_course(session, course_id, viewer),
        chain_id=chain_id,
        card_gate=card_gate,
    )
