"""Learning bodies."""

from __future__ import annotations

from backend.certificates.schemas import CertificateOut
from backend.core.schemas import ApiModel


class ProgressOut(ApiModel):
    """Lessons completed out of the total; the certificate once all are done."""

    course_id: int
    completed: int
    total: int
    certificate: CertificateOut | None
    completed_lessons: list[int] = []  # positions, from GET /courses/{id}/progress
