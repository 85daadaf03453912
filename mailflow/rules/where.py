"""`where:` expressions: Jinja expressions in a sandbox, never Python's eval."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

from mailflow.values import to_decimal

AMOUNTS = ("subtotal", "shipping", "tax", "discount", "total")


@lru_cache(maxsize=1)
def _environment():
    # Imported here: Jinja costs ~20 ms that a tick with no `where` to evaluate should not pay.
    from jinja2 import StrictUndefined
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    return ImmutableSandboxedEnvironment(undefined=StrictUndefined)


@lru_cache(maxsize=256)
def compile_where(expression: str) -> Callable[..., Any]:
    """Raises jinja2.TemplateSyntaxError for an expression that does not parse."""
    return _environment().compile_expression(expression)


def numeric_amounts(row: dict[str, Any] | None) -> dict[str, Any] | None:
    """A stored order or cart with its amounts as Decimals: `order.total > 50` must just work."""
    if row is None:
        return None
    return {k: (to_decimal(v) if k in AMOUNTS and v is not None else v) for k, v in row.items()}


def where_holds(expression: str, context: dict[str, Any]) -> bool:
    return bool(compile_where(expression)(**context))
