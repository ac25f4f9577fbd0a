"""Receipt emails: message building and pluggable delivery backends.

Backends: "file" (default; one .eml file per message under `var/mail/`, named after the
Message-ID, so delivering the same message twice rewrites one file), "console" (logs it) and
"smtp". Message-IDs are deterministic per (order, kind), so even SMTP re-deliveries after a
crash are recognisable as duplicates by mail clients.
"""

from __future__ import annotations

import logging
import os
import re
import smtplib
import tempfile
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Protocol

from backend.core.config import WorkerSettings, get_settings
from backend.core.db import utcnow

log = logging.getLogger(__name__)


class EmailBackend(Protocol):
    """Delivers one message."""

    name: str

    def send(self, message: EmailMessage) -> None:
        """Deliver `message` (raise to have the task retry)."""


class ConsoleBackend:
    """Logs messages (development)."""

    name = "console"

    def send(self, message: EmailMessage) -> None:
        """Log the whole message at INFO."""
        log.info("email to %s:\n%s", message["To"], message.as_string())


class FileBackend:
    """Writes each message to `<directory>/<message-id>.eml` atomically."""

    name = "file"

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path_for(self, message: EmailMessage) -> Path:
        """Where `message` is (or would be) written."""
        message_id = str(message["Message-ID"] or "").strip("<>")
        if not message_id:
            raise ValueError("messages need a Message-ID")
        return self.directory / (re.sub(r"[^A-Za-z0-9._-]", "_", message_id) + ".eml")

    def send(self, message: EmailMessage) -> None:
        """Write the message; a second delivery of the same Message-ID replaces the file."""
        self.directory.mkdir(parents=True, exist_ok=True)
        target = self.path_for(message)
        fd, tmp = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(message.as_bytes())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


class SmtpBackend:
    """Sends through an SMTP server."""

    name = "smtp"

    def __init__(
        self,
        host: str,
        port: int,
        *,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = False,
        timeout: float = 30,
    ) -> None:
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.starttls = starttls
        self.timeout = timeout

    def send(self, message: EmailMessage) -> None:
        """One connection per message: receipts are rare and connections go stale."""
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            if self.starttls:
                smtp.starttls()
            if self.username:
                smtp.login(self.username, self.password or "")
            smtp.send_message(message)


def get_backend(settings: WorkerSettings | None = None) -> EmailBackend:
    """The configured backend."""
    settings = settings or get_settings().worker
    if settings.email_backend == "console":
        return ConsoleBackend()
    if settings.email_backend == "smtp":
        return SmtpBackend(
            settings.smtp_host,
            settings.smtp_port,
            username=settings.smtp_username,
            password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
            starttls=settings.smtp_starttls,
        )
    return FileBackend(settings.mail_dir)


def format_amount(amount: int, decimals: int, unit: str) -> str:
    """`1234` with 2 decimals and "EUR" -> "12.34 EUR" (no float rounding)."""
    if decimals <= 0:
        return f"{amount} {unit}"
    whole, frac = divmod(amount, 10**decimals)
    frac_text = str(frac).rjust(decimals, "0")
    if decimals > 2:  # token amounts: 0.01 ETH, not 0.010000000000000000 ETH
        frac_text = frac_text.rstrip("0")
    return f"{whole}.{frac_text} {unit}" if frac_text else f"{whole} {unit}"


def receipt_message_id(order_ref: str, kind: str) -> str:
    """The deterministic Message-ID of the receipt of (order, kind)."""
    return f"<receipt-{kind}-{order_ref}@tuition>"


def build_receipt(
    *,
    kind: str,
    order_ref: str,
    recipient: str,
    course_title: str,
    amount_text: str,
    learner: str,
    mail_from: str,
) -> EmailMessage:
    """The receipt of a paid or refunded order."""
    message = EmailMessage()
    if kind == "refunded":
        subject = f"Refund for {course_title}"
        body = (
            f"Your payment of {amount_text} for “{course_title}” was refunded.\n"
            f"Access of {learner} to the course has ended.\n"
        )
    else:
        subject = f"Receipt for {course_title}"
        body = (
            f"Thank you for your purchase of “{course_title}” for {amount_text}.\n"
            f"The course is now open to {learner}.\n"
        )
    body += f"\nOrder: {order_ref}\n"
    message["Subject"] = subject
    message["From"] = mail_from
    message["To"] = recipient
    message["Date"] = format_datetime(utcnow())
    message["Message-ID"] = receipt_message_id(order_ref, kind)
    message.set_content(body)
    return message
