"""Receipt email backends and formatting (no chain, no database)."""

from __future__ import annotations

import logging
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from backend.core.config import WorkerSettings
from backend.worker import email
from backend.worker.email import (
    ConsoleBackend,
    FileBackend,
    SmtpBackend,
    build_receipt,
    format_amount,
    get_backend,
)


def receipt(kind: str = "paid") -> EmailMessage:
    return build_receipt(
        kind=kind,
        order_ref="ord_1",
        recipient="a@example.com",
        course_title="Solidity from Zero",
        amount_text="49.00 EUR",
        learner="0x" + "ab" * 20,
        mail_from="Tuition <receipts@tuition.local>",
    )


def test_amounts_are_exact() -> None:
    assert format_amount(4900, 2, "EUR") == "49.00 EUR"
    assert format_amount(5, 2, "USD") == "0.05 USD"
    assert format_amount(10**16, 18, "ETH") == "0.01 ETH"
    assert format_amount(25 * 10**18, 18, "ESN") == "25 ESN"
    assert format_amount(1234, 0, "JPY") == "1234 JPY"


def test_receipts_have_stable_message_ids() -> None:
    paid, refunded = receipt("paid"), receipt("refunded")
    assert paid["Message-ID"] == receipt("paid")["Message-ID"]
    assert paid["Message-ID"] != refunded["Message-ID"]
    assert paid["Subject"] == "Receipt for Solidity from Zero"
    assert refunded["Subject"] == "Refund for Solidity from Zero"


def test_file_backend_writes_one_file_per_message(tmp_path: Path) -> None:
    backend = FileBackend(tmp_path / "mail")
    backend.send(receipt())
    backend.send(receipt())  # a re-delivery replaces, never duplicates
    backend.send(receipt("refunded"))
    files = sorted((tmp_path / "mail").iterdir())
    assert len(files) == 2 and all(f.suffix == ".eml" for f in files)
    assert b"49.00 EUR" in files[0].read_bytes()


def test_console_backend_logs(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="backend.worker.email"):
        ConsoleBackend().send(receipt())
    assert "Receipt for Solidity from Zero" in caplog.text


def test_smtp_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, Any]] = []

    class FakeSMTP:
        def __init__(self, host: str, port: int, timeout: float) -> None:
            calls.append(("connect", (host, port)))

        def __enter__(self) -> FakeSMTP:
            return self

        def __exit__(self, *exc: object) -> None:
            calls.append(("quit", None))

        def starttls(self) -> None:
            calls.append(("starttls", None))

        def login(self, user: str, password: str) -> None:
            calls.append(("login", user))

        def send_message(self, message: EmailMessage) -> None:
            calls.append(("send", message["To"]))

    monkeypatch.setattr(email.smtplib, "SMTP", FakeSMTP)
    SmtpBackend("mail.local", 587, username="u", password="p", starttls=True).send(receipt())
    assert calls == [
        ("connect", ("mail.local", 587)),
        ("starttls", None),
        ("login", "u"),
        ("send", "a@example.com"),
        ("quit", None),
    ]


def test_backend_from_settings(tmp_path: Path) -> None:
    assert isinstance(get_backend(WorkerSettings(email_backend="console")), ConsoleBackend)
    assert isinstance(get_backend(WorkerSettings(email_backend="smtp")), SmtpBackend)
    file_backend = get_backend(WorkerSettings(mail_dir=tmp_path))
    assert isinstance(file_backend, FileBackend) and file_backend.directory == tmp_path
