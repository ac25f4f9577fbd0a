"""Catalog rules: courses, lessons, fiat prices, tokens, and mirroring on-chain course state.

Sync functions on a `Session` (the indexer calls `link_onchain_course`, `mirror_price` and
`mirror_course_update`; the API calls everything through `AsyncSession.run_sync`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, delete, exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from backend.audit.service import record as audit
from backend.catalog.models import Course, CourseChain, CourseStatus, Lesson, Token, TokenPrice
from backend.core.config import Settings
from backend.core.errors import ConflictError, ForbiddenError, InvalidInputError, NotFoundError
from backend.core.security import ZERO_ADDRESS, checksum_address

NATIVE_SYMBOLS = {
    1: "ETH",
    10: "ETH",
    56: "BNB",
    100: "xDAI",
    137: "POL",
    8453: "ETH",
    17000: "ETH",
    31337: "ETH",
    42161: "ETH",
    43114: "AVAX",
    80002: "POL",
    11155111: "ETH",
}
MAX_REFUND_WINDOW = 30 * 24 * 3600  # the contract's limit


def seed_tokens(session: Session, settings: Settings, extra: Iterable[Any] = ()) -> None:
    """Make sure the native coin, configured tokens and deployed tokens of the settings' network
    are known (idempotent)."""
    wanted: dict[str, tuple[str, int, str]] = {}
    symbol = settings.current_network.native_symbol or NATIVE_SYMBOLS.get(settings.chain_id, "ETH")
    wanted[ZERO_ADDRESS] = (symbol, 18, symbol)
    for info in extra:
        wanted[checksum_address(info.address)] = (info.symbol, info.decimals, info.name)
    for raw in settings.tokens:
        address = checksum_address(str(raw["address"]))
        sym = str(raw.get("symbol", "?"))
        wanted[address] = (sym, int(raw.get("decimals", 18)), str(raw.get("name", sym)))
    chain_id = settings.chain_id
    existing = {
        t.address: t for t in session.scalars(select(Token).where(Token.chain_id == chain_id))
    }
    for address, (sym, decimals, name) in wanted.items():
        token = existing.get(address)
        if token is None:
            session.add(
                Token(chain_id=chain_id, address=address, symbol=sym, decimals=decimals, name=name)
            )
        else:
            token.symbol, token.decimals, token.name = sym, decimals, name
    session.flush()


TokenKey = tuple[int, str]  # (chain id, address)


def tokens_by_key(session: Session) -> dict[TokenKey, Token]:
    """Every known token of every chain, by (chain id, address)."""
    return {(t.chain_id, t.address): t for t in session.scalars(select(Token)).all()}


def get_course(session: Session, course_id: int) -> Course:
    """A course by id, or 404."""
    course = session.get(Course, course_id)
    if course is None:
        raise NotFoundError(f"course {course_id} does not exist", code="course_not_found")
    return course


def get_visible_course(session: Session, course_id: int, viewer: str | None) -> Course:
    """A course the viewer may see: published or delisted ones, and a provider's own drafts."""
    course = get_course(session, course_id)
    if course.status == CourseStatus.DRAFT and viewer != course.provider:
        raise NotFoundError(f"course {course_id} does not exist", code="course_not_found")
    return course


def get_owned_course(session: Session, course_id: int, provider: str) -> Course:
    """A course that `provider` owns, or 404/403."""
    course = get_course(session, course_id)
    if course.provider != provider:
        raise ForbiddenError("only the course's provider may do this", code="not_course_provider")
    return course


def list_published(session: Session, *, limit: int, after_id: int | None) -> Sequence[Course]:
    """Published courses by id, keyset-paginated."""
    stmt = select(Course).where(Course.status == CourseStatus.PUBLISHED)
    if after_id is not None:
        stmt = stmt.where(Course.id > after_id)
    return session.scalars(stmt.order_by(Course.id).limit(limit)).all()


def list_by_provider(session: Session, provider: str) -> Sequence[Course]:
    """A provider's courses, every status."""
    return session.scalars(
        select(Course).where(Course.provider == provider).order_by(Course.id)
    ).all()


def token_allowed() -> ColumnElement[bool]:
    """A price's token is not excluded by its chain's market allowlist (a purchase in it would
    revert)."""
    return ~exists().where(
        Token.chain_id == TokenPrice.chain_id,
        Token.address == TokenPrice.token,
        Token.allowed.is_(False),
    )


def prices_for(
    session: Session, course_ids: Sequence[int], chain_id: int
) -> dict[int, list[TokenPrice]]:
    """Accepted token prices of chain `chain_id` per course."""
    result: dict[int, list[TokenPrice]] = {cid: [] for cid in course_ids}
    if not course_ids:
        return result
    rows = session.scalars(
        select(TokenPrice)
        .where(
            TokenPrice.course_id.in_(course_ids),
            TokenPrice.chain_id == chain_id,
            TokenPrice.accepted.is_(True),
            token_allowed(),
        )
        .order_by(TokenPrice.course_id, TokenPrice.token)
    ).all()
    for price in rows:
        result[price.course_id].append(price)
    return result


def lesson_count(session: Session, course_id: int) -> int:
    """How many lessons a course has."""
    return len(session.scalars(select(Lesson.id).where(Lesson.course_id == course_id)).all())


def _course_snapshot(course: Course) -> dict[str, Any]:
    return {
        "title": course.title,
        "status": course.status,
        "fiatPrice": None if course.fiat_price is None else str(course.fiat_price),
        "fiatCurrency": course.fiat_currency,
        "refundWindow": course.refund_window,
        "certificateMode": course.certificate_mode,
        "onchain": {str(r.chain_id): r.onchain_id for r in course.chains},
    }


def create_course(
    session: Session,
    *,
    provider: str,
    title: str,
    description: str,
    refund_window: int,
) -> Course:
    """A new draft course of `provider`."""
    course = Course(
        provider=checksum_address(provider),
        title=title,
        description=description,
        refund_window=refund_window,
        status=CourseStatus.DRAFT,
    )
    session.add(course)
    session.flush()
    audit(
        session,
        actor=f"user:{course.provider}",
        action="course.create",
        subject_type="course",
        subject_id=course.id,
        after=_course_snapshot(course),
    )
    return course


def update_course(session: Session, course: Course, *, actor: str, **changes: Any) -> Course:
    """Change title, description, status, refund window or certificate mode."""
    before = _course_snapshot(course)
    for key, value in changes.items():
        if value is None:
            continue
        if key == "status" and value not in CourseStatus.ALL:
            raise InvalidInputError(f"unknown status {value!r}")
        if key == "title" and course.chains and value != course.title:
            # The on-chain title (shown in certificates) cannot change; keep them equal.
            raise ConflictError(
                "the title of a course registered on-chain cannot change", code="title_locked"
            )
        setattr(course, key, value)
    session.flush()
    after = _course_snapshot(course)
    if after != before:
        audit(
            session,
            actor=actor,
            action="course.update",
            subject_type="course",
            subject_id=course.id,
            before=before,
            after=after,
        )
    return course


def set_fiat_price(
    session: Session, course: Course, *, amount: int | None, currency: str | None, actor: str
) -> Course:
    """Set (or clear, with None) the card price in minor units; audited (money)."""
    before = _course_snapshot(course)
    course.fiat_price = amount
    course.fiat_currency = currency.lower() if currency else None
    session.flush()
    audit(
        session,
        actor=actor,
        action="course.fiat_price",
        subject_type="course",
        subject_id=course.id,
        before=before,
        after=_course_snapshot(course),
    )
    return course


def upsert_lesson(
    session: Session, course: Course, *, position: int, title: str, body: str
) -> Lesson:
    """Create or replace lesson `position` of a course."""
    lesson = session.scalar(
        select(Lesson).where(Lesson.course_id == course.id, Lesson.position == position)
    )
    if lesson is None:
        existing = lesson_count(session, course.id)
        if position != existing + 1:
            raise InvalidInputError(
                f"lessons are numbered 1..n without gaps: the next one is {existing + 1}",
                code="lesson_position",
            )
        lesson = Lesson(course_id=course.id, position=position, title=title, body=body)
        session.add(lesson)
    else:
        lesson.title, lesson.body = title, body
    session.flush()
    return lesson


def get_lesson(session: Session, course_id: int, position: int) -> Lesson:
    """Lesson `position` of a course, or 404."""
    lesson = session.scalar(
        select(Lesson).where(Lesson.course_id == course_id, Lesson.position == position)
    )
    if lesson is None:
        raise NotFoundError(f"course {course_id} has no lesson {position}", code="lesson_not_found")
    return lesson


def list_lessons(session: Session, course_id: int) -> Sequence[Lesson]:
    """The lessons of a course in order."""
    return session.scalars(
        select(Lesson).where(Lesson.course_id == course_id).order_by(Lesson.position)
    ).all()


def set_onchain_id(
    session: Session,
    course: Course,
    chain_id: int,
    onchain_id: int,
    *,
    actor: str,
    onchain_provider: str,
) -> Course:
    """Link a course to its id in the market on `chain_id`. The link comes from the chain:
    `onchain_provider` is who that market pays out for that id, and it must be the course's
    provider. A course may be linked once per chain.

    Raises:
        ForbiddenError: the on-chain course belongs to another provider.
        ConflictError: the course is linked on that chain already, or the id is taken there.
    """
    if checksum_address(onchain_provider) != course.provider:
        raise ForbiddenError(
            f"on-chain course {onchain_id} is paid out to another provider",
            code="not_onchain_provider",
        )
    current = course.onchain_id_on(chain_id)
    if current == onchain_id:
        return course
    if current is not None:
        raise ConflictError(
            f"course {course.id} is already linked to on-chain course {current} "
            f"on chain {chain_id}",
            code="already_linked",
        )
    other = course_by_onchain_id(session, chain_id, onchain_id)
    if other is not None:
        raise ConflictError(
            f"on-chain course {onchain_id} of chain {chain_id} is already linked to course "
            f"{other.id}",
            code="onchain_id_taken",
        )
    before = _course_snapshot(course)
    try:
        with session.begin_nested():
            course.chains.append(CourseChain(chain_id=chain_id, onchain_id=onchain_id))
            session.flush()
    except IntegrityError as exc:
        session.expire(course, ["chains"])
        raise ConflictError(
            f"on-chain course {onchain_id} is already linked", code="onchain_id_taken"
        ) from exc
    audit(
        session,
        actor=actor,
        action="course.link_onchain",
        subject_type="course",
        subject_id=course.id,
        before=before,
        after=_course_snapshot(course),
    )
    return course


def course_by_onchain_id(session: Session, chain_id: int, onchain_id: int) -> Course | None:
    """The course linked to on-chain course `onchain_id` of `chain_id`, if any."""
    return session.scalar(
        select(Course)
        .join(CourseChain)
        .where(CourseChain.chain_id == chain_id, CourseChain.onchain_id == onchain_id)
    )


def unlinked_draft(
    session: Session, chain_id: int, provider: str, title: str, *, lock: bool = False
) -> Course | None:
    """The provider's oldest course with exactly this title not yet linked on `chain_id`: the one
    a `CourseCreated` of that chain links to."""
    linked_here = select(CourseChain.course_id).where(CourseChain.chain_id == chain_id)
    stmt = (
        select(Course)
        .where(
            Course.provider == checksum_address(provider),
            Course.title == title,
            Course.id.not_in(linked_here),
        )
        .order_by(Course.id)
        .limit(1)
    )
    return session.scalar(stmt.with_for_update(of=Course) if lock else stmt)


def link_onchain_course(
    session: Session,
    chain_id: int,
    provider: str,
    title: str,
    onchain_id: int,
    *,
    refund_window: int | None = None,
    block_number: int | None = None,
) -> Course:
    """Indexer hand-off for `CourseCreated` on `chain_id`: link the provider's oldest course with
    this exact title not yet linked on that chain, or create the course if it was registered
    on-chain without one. Idempotent.
    """
    provider = checksum_address(provider)
    linked = course_by_onchain_id(session, chain_id, onchain_id)
    if linked is not None and linked.provider == provider:
        return linked
    if linked is not None:
        # Linked by another provider before the chain said whose it is: the chain wins.
        unlink_onchain(
            session,
            linked,
            chain_id,
            actor="indexer",
            reason=f"on-chain course {onchain_id} was created by {provider}, not {linked.provider}",
        )
    course = unlinked_draft(session, chain_id, provider, title, lock=True)
    if course is None:
        course = Course(
            provider=provider,
            title=title[:100],
            description="",
            refund_window=refund_window or 0,
            status=CourseStatus.DRAFT,
        )
        session.add(course)
        session.flush()
    if refund_window is not None:
        course.refund_window = refund_window
    set_onchain_id(
        session, course, chain_id, onchain_id, actor="indexer", onchain_provider=provider
    )
    reg = course.registration(chain_id)
    assert reg is not None
    reg.listed, reg.block = True, block_number
    session.flush()
    return course


def unlink_onchain(
    session: Session, course: Course, chain_id: int, *, actor: str, reason: str
) -> Course:
    """Remove a course's link to an on-chain id of `chain_id` that is not its provider's
    (audited); the prices mirrored from that chain's market go with it."""
    reg = course.registration(chain_id)
    if reg is None:
        return course
    before = _course_snapshot(course)
    course.chains.remove(reg)
    session.execute(
        delete(TokenPrice).where(TokenPrice.course_id == course.id, TokenPrice.chain_id == chain_id)
    )
    session.flush()
    audit(
        session,
        actor=actor,
        action="course.unlink_onchain",
        subject_type="course",
        subject_id=course.id,
        before=before,
        after=_course_snapshot(course),
        reason=reason,
    )
    return course


def mismatched_links(
    session: Session, chain_id: int, provider_of: Callable[[int], str | None]
) -> list[tuple[Course, int, str | None]]:
    """Courses linked on `chain_id` whose on-chain id that chain's market gives to another
    provider (or does not know): (course, on-chain id, who the chain says the provider is).
    `provider_of` asks the market."""
    found: list[tuple[Course, int, str | None]] = []
    for course, onchain_id in session.execute(
        select(Course, CourseChain.onchain_id)
        .join(CourseChain)
        .where(CourseChain.chain_id == chain_id)
        .order_by(Course.id)
    ).all():
        onchain = provider_of(int(onchain_id))
        if onchain is None or checksum_address(onchain) != course.provider:
            found.append((course, int(onchain_id), onchain))
    return found


def mirror_price(
    session: Session,
    *,
    chain_id: int,
    course_onchain_id: int,
    token: str,
    price: int,
    accepted: bool,
    block_number: int,
) -> TokenPrice | None:
    """Indexer hand-off for `PriceSet`: store the price unless a later block already set it.

    Returns None when the on-chain course is not linked to a course here.
    """
    course = course_by_onchain_id(session, chain_id, course_onchain_id)
    if course is None:
        return None
    token = checksum_address(token)
    current = session.scalar(
        select(TokenPrice)
        .where(
            TokenPrice.course_id == course.id,
            TokenPrice.chain_id == chain_id,
            TokenPrice.token == token,
        )
        .with_for_update()
    )
    if current is None:
        current = TokenPrice(
            course_id=course.id,
            chain_id=chain_id,
            token=token,
            price=price,
            accepted=accepted,
            updated_block=block_number,
        )
        session.add(current)
    elif block_number >= current.updated_block:
        current.price, current.accepted, current.updated_block = price, accepted, block_number
    session.flush()
    return current


def mirror_course_update(
    session: Session,
    *,
    chain_id: int,
    onchain_id: int,
    listed: bool,
    refund_window: int,
    block_number: int,
) -> Course | None:
    """Indexer hand-off for `CourseUpdated` on `chain_id` (listing and refund window)."""
    course = course_by_onchain_id(session, chain_id, onchain_id)
    reg = None if course is None else course.registration(chain_id)
    if course is None or reg is None:
        return None
    if reg.block is not None and block_number < reg.block:
        return course
    reg.listed = listed
    course.refund_window = refund_window
    reg.block = block_number
    session.flush()
    return course
