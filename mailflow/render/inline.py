"""CSS inlining: `<style>` rules into `style=""`, @media rules kept in a `<style>` block.

css-inline (`pip install 'mailflow[fast]'`) when installed, else premailer; both with the
network off. Imported on first use: premailer alone costs ~130 ms of start-up.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from functools import cache

INLINERS = ("css-inline", "premailer")


def available() -> list[str]:
    names = []
    try:
        import css_inline  # noqa: F401

        names.append("css-inline")
    except ImportError:
        pass
    return [*names, "premailer"]


@cache
def inliner(name: str | None = None) -> Callable[[str], str]:
    """The inlining function: `name` forces one (tests, benchmarks); None picks the fastest."""
    chosen = name or os.environ.get("MAILFLOW_INLINER") or available()[0]
    if chosen == "css-inline":
        import css_inline

        engine = css_inline.CSSInliner(keep_style_tags=False, keep_at_rules=True,
                                       load_remote_stylesheets=False)
        return engine.inline
    if chosen != "premailer":
        raise ValueError(f"unknown CSS inliner {chosen!r}: use one of {', '.join(INLINERS)}")
    # Read by premailer at import: two templates alternating otherwise evict each other's
    # parsed CSS from its 128-entry cache (FIELD-NOTES: 72 → 24 e-mails/s).
    os.environ.setdefault("PREMAILER_CACHE_MAXSIZE", "1024")
    from premailer import Premailer

    def premailer_inline(html: str) -> str:
        return Premailer(html, allow_network=False, strip_important=False,
                         cssutils_logging_level=logging.CRITICAL, disable_validation=True,
                         keep_style_tags=False, remove_classes=False).transform()

    return premailer_inline
