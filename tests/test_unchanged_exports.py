"""A tick recognises the exports it already imported by their stat, without reading them;
a file whose stat changed is hashed again, and the content hash decides (issue 15, 2)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest
from test_run import export, outbox, project

_WATCHED: set[str] = set()
_OPENED: list[str] = []
_HOOKED: list[bool] = []


def _record_open(event: str, args: tuple) -> None:
    if event != "open" or not _WATCHED or not args or isinstance(args[0], int):
        return
    name = os.path.abspath(os.fsdecode(args[0]))
    if name in _WATCHED:
        _OPENED.append(name)


@pytest.fixture
def opened():
    """Which watched files the code opens (Python's audit hook sees every open)."""
    if not _HOOKED:  # an audit hook cannot be removed: one for the whole session
        sys.addaudithook(_record_open)
        _HOOKED.append(True)

    def watch(*paths: Path) -> list[str]:
        _OPENED.clear()
        _WATCHED.clear()
        _WATCHED.update(os.path.abspath(p) for p in paths)
        return _OPENED

    yield watch
    _WATCHED.clear()
    _OPENED.clear()


def _exports(mailflow) -> Path:
    return mailflow.folder / "p" / "exports"


def test_a_tick_does_not_open_an_unchanged_export_it_imported(mailflow, opened):
    project(mailflow)
    export(mailflow, "orders_1.csv", ("A-1", "ana@example.com"))
    assert mailflow("run", "--now", "2026-03-02T10:05").exit_code == 0
    reads = opened(_exports(mailflow) / "orders_1.csv")
    before = mailflow.dump()
    tick = mailflow("run", "--quiet", "--now", "2026-03-02T10:10")
    assert (tick.exit_code, tick.stdout, tick.stderr) == (0, "", "")
    assert reads == []
    after = mailflow.dump()
    assert after["imports"] == before["imports"] and after["orders"] == before["orders"]
    said = mailflow("run", "--json", "--now", "2026-03-02T10:15").json()["import"]["files"]
    assert [(Path(f["path"]).name, f["format"], f["kind"], f["skipped"]) for f in said] == [
        ("orders_1.csv", "mailflow", "orders", "already imported")]
    assert reads == []


def test_an_export_changed_in_place_is_imported(mailflow, opened):
    project(mailflow)
    export(mailflow, "orders_1.csv", ("A-1", "ana@example.com"))
    assert mailflow("run", "--now", "2026-03-02T10:05").exit_code == 0
    export(mailflow, "orders_1.csv", ("A-1", "ana@example.com"), ("A-2", "bea@example.com"))
    assert mailflow("run", "--quiet", "--now", "2026-03-02T10:10").exit_code == 0
    assert outbox(mailflow) == ["confirmation_order_A-1.eml", "confirmation_order_A-2.eml"]
    assert mailflow.scalar("SELECT count(*) FROM imports") == 2


def test_a_touched_or_copied_identical_export_is_read_once_and_imports_nothing(mailflow, opened):
    project(mailflow)
    export(mailflow, "orders_1.csv", ("A-1", "ana@example.com"))
    assert mailflow("run", "--now", "2026-03-02T10:05").exit_code == 0
    original = _exports(mailflow) / "orders_1.csv"
    copy = _exports(mailflow) / "orders_copy.csv"
    shutil.copyfile(original, copy)
    stat = original.stat()
    os.utime(original, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    reads = opened(original, copy)
    first = mailflow("run", "--quiet", "--now", "2026-03-02T10:10")
    assert (first.exit_code, first.stderr) == (0, "")
    assert set(reads) == {str(original), str(copy)}
    assert mailflow.scalar("SELECT count(*) FROM imports") == 1  # the content decides
    assert outbox(mailflow) == ["confirmation_order_A-1.eml"]
    reads.clear()
    assert mailflow("run", "--quiet", "--now", "2026-03-02T10:15").exit_code == 0
    assert reads == []  # now recognised by their stat too


def test_a_file_moved_over_an_export_with_its_size_and_mtime_is_read(mailflow, opened):
    """Replaced by `mv` (a new inode): same size, same mtime, other content."""
    project(mailflow)
    export(mailflow, "orders_1.csv", ("A-1", "ana@example.com"))
    assert mailflow("run", "--now", "2026-03-02T10:05").exit_code == 0
    target = _exports(mailflow) / "orders_1.csv"
    stat = target.stat()
    other = mailflow.folder / "incoming.csv"
    other.write_text(target.read_text(encoding="utf-8").replace("A-1", "A-9"), encoding="utf-8")
    os.utime(other, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    os.replace(other, target)
    assert (target.stat().st_size, target.stat().st_mtime_ns) == (stat.st_size, stat.st_mtime_ns)
    assert mailflow("run", "--quiet", "--now", "2026-03-02T10:10").exit_code == 0
    assert outbox(mailflow) == ["confirmation_order_A-1.eml", "confirmation_order_A-9.eml"]


def test_import_of_an_unchanged_file_is_recognised_without_reading_it(mailflow, opened):
    path = mailflow.write("orders.csv", "order_id,email,status,created_at\n"
                                        "A-1,ana@example.com,paid,2026-03-02 10:00\n")
    assert mailflow("import", path, "--now", "2026-03-02T10:05").exit_code == 0
    reads = opened(path)
    again = mailflow("import", path, "--json", "--now", "2026-03-02T10:06")
    assert again.exit_code == 0
    assert [(f["format"], f["kind"], f["skipped"]) for f in again.json()["files"]] == [
        ("mailflow", "orders", "already imported")]
    assert reads == []
    # read differently (another --kind): not recognised by its stat, the content decides
    other = mailflow("import", path, "--kind", "customers", "--now", "2026-03-02T10:07")
    assert other.exit_code == 0
    assert reads == [str(path)] * len(reads) and reads
