"""`mailflow init`: a working starter project from the files shipped with the package."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from mailflow.errors import UsageError


def starter_files() -> resources.abc.Traversable:
    return resources.files("mailflow") / "data"


def init_project(folder: Path) -> list[Path]:
    """Write rules.yaml, templates/ and exports/ into `folder`; never overwrite a file."""
    data = starter_files()
    target = folder / "rules.yaml"
    if target.exists():
        raise UsageError(f"{target} already exists: init never overwrites a project")
    folder.mkdir(parents=True, exist_ok=True)
    written = [target]
    target.write_bytes((data / "rules.yaml").read_bytes())
    templates = folder / "templates"
    templates.mkdir(exist_ok=True)
    for item in (data / "templates").iterdir():
        destination = templates / item.name
        if item.is_file() and not destination.exists():
            destination.write_bytes(item.read_bytes())
            written.append(destination)
    exports = folder / "exports"
    exports.mkdir(exist_ok=True)
    written.append(exports)
    return written

