"""E-mail addresses: validated and normalised once, at import (no DNS lookups)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from email_validator import EmailNotValidError, validate_email


@dataclass(frozen=True, slots=True)
class Checked:
    email: str | None  # the normalised address, or None
    problem: str | None  # why it cannot be used: "missing_email" or "invalid_email: ..."

    @property
    def key(self) -> str | None:
        """Identity of a customer: the address, case-insensitive."""
        return self.email.lower() if self.email else None


@lru_cache(maxsize=65536)
def check_address(raw: str | None) -> Checked:
    text = (raw or "").strip()
    if not text:
        return Checked(None, "missing_email")
    try:
        result = validate_email(text, check_deliverability=False)
    except EmailNotValidError as exc:
        return Checked(None, f"invalid_email: {exc}")
    return Checked(result.normalized, None)
