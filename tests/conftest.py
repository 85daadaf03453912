"""Shared test helpers: the real CLI on a real SQLite file in a temporary folder."""

from __future__ import annotations

import json
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mailflow.cli import app

FIXTURES = Path(__file__).parent / "fixtures"


@dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str

    def json(self):
        return json.loads(self.stdout)


class Mailflow:
    """Runs `mailflow` commands against one store and config in a tmp folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.db = folder / "mailflow.db"
        self.config = folder / "rules.yaml"
        self.runner = CliRunner()

    def __call__(self, *args: str) -> Result:
        result = self.runner.invoke(
            app, ["--db", str(self.db), "--config", str(self.config), *map(str, args)],
            catch_exceptions=False,
        )
        return Result(result.exit_code, result.stdout, result.stderr)

    def write_config(self, text: str) -> Path:
        self.config.write_text(text, encoding="utf-8")
        return self.config

    def fixture(self, name: str) -> Path:
        """Copy a file from tests/fixtures into the tmp folder (never touch the originals)."""
        target = self.folder / Path(name).name
        shutil.copyfile(FIXTURES / name, target)
        return target

    def write(self, name: str, content: str | bytes) -> Path:
        target = self.folder / name
        if isinstance(content, str):
            target.write_text(content, encoding="utf-8")
        else:
            target.write_bytes(content)
        return target

    def query(self, sql: str, params: tuple = ()) -> list[dict]:
        conn = sqlite3.connect(self.db)
        conn.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in conn.execute(sql, params)]
        finally:
            conn.close()

    def scalar(self, sql: str, params: tuple = ()):
        rows = self.query(sql, params)
        return next(iter(rows[0].values())) if rows else None

    def dump(self) -> dict[str, list]:
        """Every table's rows, to assert that something changed nothing."""
        conn = sqlite3.connect(self.db)
        try:
            tables = [r[0] for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
            return {t: sorted(map(repr, conn.execute(f"SELECT * FROM {t}"))) for t in tables}
        finally:
            conn.close()


PARIS_CONFIG = """\
shop:
  name: Boutique Test
  url: https://boutique.example
  timezone: Europe/Paris
  locale: fr
  currency: EUR
"""


@pytest.fixture
def mailflow(tmp_path: Path) -> Mailflow:
    mf = Mailflow(tmp_path)
    mf.write_config(PARIS_CONFIG)
    return mf


def pytest_addoption(parser):
    parser.addoption("--update-golden", action="store_true", default=False,
                     help="rewrite tests/golden/ from the current templates (review the diff!)")


@pytest.fixture
def update_golden(request) -> bool:
    return request.config.getoption("--update-golden")
