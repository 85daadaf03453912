"""The package reads as its pipeline (issue 11): every import of mailflow's own modules, read
from the source (ast), goes from a stage to itself or to a stage below it, and none closes a
cycle. Imports inside functions and under `if TYPE_CHECKING:` count: they are dependencies
too, only paid later."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parent.parent / "mailflow"

# The allowed direction: a module may import its own stage and the stages listed before it,
# never one listed after it. It reads as the pipeline importing → store → rules → render →
# delivery, with what serves it around:
# - the leaves are shared by every stage and import no other stage;
# - the store comes first: importing writes into it and the rules read from it, and it
#   imports neither (the data flows importing → store → rules; the imports point at the store);
# - config.py (rules.yaml) is validated against the rules' own registry (rules/triggers.py)
#   and its `where:` compiler, so it belongs with the rules (and starter.py, which reads
#   it for `check` and for delivery's refusal); importing needs only yamlfile.py of it;
# - consent sits below render: render signs the unsubscribe links with consent's tokens;
#   consent's purge needs only the rules' windows and the store;
# - console prints the reports of the stages below it, and web (serve) prints through it.
STAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("leaves", ("mailflow", "mailflow.errors", "mailflow.clock", "mailflow.records",
                "mailflow.values", "mailflow.yamlfile", "mailflow.localized", "mailflow.content",
                "mailflow.tracking")),
    ("store", ("mailflow.store",)),
    ("importing", ("mailflow.importing",)),
    ("rules", ("mailflow.config", "mailflow.starter", "mailflow.rules")),
    ("consent", ("mailflow.consent",)),
    ("render", ("mailflow.render",)),
    ("delivery", ("mailflow.delivery",)),
    ("report", ("mailflow.report",)),
    ("console", ("mailflow.console",)),
    ("web", ("mailflow.web",)),
    ("cli", ("mailflow.cli", "mailflow.__main__")),
)
# Below, but still not allowed: render works from the rows it is handed (by the rules or
# preview), never from the store, so that rendering never waits on SQLite.
FORBIDDEN = {("render", "store")}


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _stage(module: str) -> int:
    best, rank = -1, None
    for number, (_, prefixes) in enumerate(STAGES):
        for prefix in prefixes:
            fits = module == prefix or (prefix != "mailflow" and module.startswith(prefix + "."))
            if fits and len(prefix) > best:
                best, rank = len(prefix), number
    assert rank is not None, f"{module} is in no stage of tests/test_layout.py: give it one"
    return rank


def _imports(module: str, path: Path) -> set[str]:
    """The mailflow modules `module` imports, wherever in the file."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1]
                                + ([base] if base else []))
            for alias in node.names:  # `from mailflow import console` names a module
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base)
    return {name for name in found if name == "mailflow" or name.startswith("mailflow.")} - {module}


IMPORTS = {module: _imports(module, path) for module, path in MODULES.items()}
GRAPH = {module: {name for name in names if name in MODULES} for module, names in IMPORTS.items()}


def test_every_import_names_a_module_that_exists():
    """A lazy import of a moved module fails only when its function runs: catch it here."""
    for module, names in IMPORTS.items():
        assert names <= set(MODULES), f"{module} imports {sorted(names - set(MODULES))}"


def test_every_module_has_a_stage():
    for module in MODULES:
        _stage(module)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_imports_a_stage_above_its_own(module):
    mine = _stage(module)
    for imported in sorted(GRAPH[module]):
        theirs = _stage(imported)
        assert theirs <= mine, (f"{module} ({STAGES[mine][0]}) imports {imported}, of a stage"
                                f" above it ({STAGES[theirs][0]})")
        assert (STAGES[mine][0], STAGES[theirs][0]) not in FORBIDDEN, (
            f"{module} imports {imported}: {STAGES[mine][0]} never imports {STAGES[theirs][0]}")


def test_no_import_cycle():
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        if module in path:
            cycle = (*path[path.index(module):], module)
            pytest.fail("import cycle: " + " → ".join(cycle))
        if module in done:
            return
        for imported in sorted(GRAPH[module]):
            visit(imported, (*path, module))
        done.add(module)

    for module in sorted(GRAPH):
        visit(module, ())


def test_the_walk_sees_lazy_and_type_checking_imports():
    """The check is only as good as the walk: a function-level import and one under
    TYPE_CHECKING are both edges."""
    assert "mailflow.render.templates" in GRAPH["mailflow.render.compose"]  # inside a method
    assert "mailflow.delivery.send" in GRAPH["mailflow.console"]  # under TYPE_CHECKING
