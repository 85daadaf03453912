"""What the e-mails carry besides the order, as rules.yaml says it: a rule's offer (a fixed
code, or single-use codes from a pool), and later the shop's service and legal content.

Read by config.py (which validates rules.yaml), used by the rules (which assign pool codes)
and by render (which shows them)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta

from mailflow.localized import Localized, read_localized
from mailflow.yamlfile import Reader

_POOL = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
DEFAULT_WARN_BELOW = 1  # a pool that ran out makes every run exit 1 until codes are imported


@dataclass(frozen=True)
class Offer:
    """A rule's `offer:`: the code every recipient gets (`code`), or one single-use code per
    recipient from the pool of that name (`pool`, imported with `mailflow codes import`)."""

    code: str | None = None
    pool: str | None = None
    text: Localized = field(default_factory=Localized)
    expires_after: timedelta | None = None
    warn_below: int = DEFAULT_WARN_BELOW  # pool only: fewer codes left makes `run` exit 1
    line: int = 0


def read_offer(r: Reader, entry: tuple, where: str) -> Offer:
    """`offer:` of a rule: `code:` or `pool:`, with `text:` (one, or one per language),
    `expires_after:` and, for a pool, `warn_below:`."""
    node = entry[0]
    found = r.mapping(node, where, ("code", "pool", "text", "expires_after", "warn_below"))
    if ("code" in found) == ("pool" in found):
        raise r.fail(node, f"{where} needs either `code:` (one code for everyone) or `pool:`"
                     " (single-use codes: `mailflow codes import FILE --pool NAME`)")
    code = r.text(found["code"], f"{where}.code").strip() if "code" in found else None
    pool = r.text(found["pool"], f"{where}.pool").strip() if "pool" in found else None
    if code is not None and (not code or any(c.isspace() for c in code)):
        raise r.fail(found["code"][0], f"{where}.code {code!r}: a code has no spaces")
    if pool is not None and not _POOL.match(pool):
        raise r.fail(found["pool"][0], f"{where}.pool {pool!r}: use lower-case letters, digits,"
                     " - and _")
    if "warn_below" in found and pool is None:
        raise r.fail(found["warn_below"][0], f"{where}.warn_below is for a pool of codes")
    return Offer(
        code=code, pool=pool,
        text=read_localized(r, found["text"], f"{where}.text") if "text" in found else Localized(),
        expires_after=r.duration(found["expires_after"], f"{where}.expires_after")
        if "expires_after" in found else None,
        warn_below=r.whole(found["warn_below"], f"{where}.warn_below", 0, 1_000_000)
        if "warn_below" in found else DEFAULT_WARN_BELOW,
        line=node.start_mark.line + 1)
