"""`where:` expressions: Jinja expressions in a sandbox, never Python's eval."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any


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


def where_holds(expression: str, context: dict[str, Any]) -> bool:
    return bool(compile_where(expression)(**context))
