"""A big export is read in a second process (issue 15, 1): what it stores and says is
exactly what reading it here stores and says, rejections, warnings and refusals included.
The size from which it happens is lowered so that small fixtures take that path."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import Mailflow
from test_crash import wait_until

import mailflow.importing.service as service

CASES = [
    ("shopify/orders_export_devstore_forezia.csv", ()),
    ("shopify/orders_export_48_columns.csv", ()),
    ("shopify/checkouts_export.csv", ("--kind", "carts")),
    ("shopify/shopify_python_api_orders.json", ()),
    ("woocommerce/woocommerce_rest_v3_orders_list_example.json", ()),
    ("woocommerce/aoe_orders_fr.csv", ()),
    ("inputs/rejected_rows.csv", ()),
    ("inputs/cp1252.csv", ()),
    ("inputs/unterminated_quote.csv", ()),  # refused halfway: nothing stored
    ("inputs/naive_times.csv", ()),  # with no shop.timezone: said to be read as UTC
]


def _import(tmp_path, name: str, options: tuple[str, ...], apart_from: int, monkeypatch):
    monkeypatch.setattr(service, "READ_APART_BYTES", apart_from)
    tmp_path.mkdir()
    mf = Mailflow(tmp_path)
    mf.write_config("" if "naive" in name else
                    "shop: {name: Boutique, url: 'https://b.example', timezone: Europe/Paris}\n")
    path = mf.fixture(name)
    result = mf("import", path, *options, "--json", "--now", "2026-03-02T10:00:00Z")
    tables = mf.dump()
    tables.pop("migrations")  # when each was applied
    tables.pop("import_files")  # the file's inode
    here = str(tmp_path)
    rows = {table: [row.replace(here, "~") for row in rows] for table, rows in tables.items()}
    return result.exit_code, result.stdout.replace(here, "~"), result.stderr.replace(here, "~"), rows


@pytest.mark.parametrize(("name", "options"), CASES, ids=[c[0] for c in CASES])
def test_an_export_read_in_a_second_process_stores_and_says_the_same(tmp_path, name, options,
                                                                     monkeypatch):
    here = _import(tmp_path / "here", name, options, 1 << 62, monkeypatch)
    apart = _import(tmp_path / "apart", name, options, 0, monkeypatch)
    assert apart == here
    assert here[0] in (0, 1, 2)


def test_the_naive_file_says_its_times_were_read_as_utc_when_read_apart(tmp_path, monkeypatch):
    code, out, _, _ = _import(tmp_path / "apart", "inputs/naive_times.csv", (), 0, monkeypatch)
    assert code == 1
    assert "were read as UTC" in out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")  # a zombie has stopped; whoever adopted it reaps it


def test_an_import_killed_while_a_second_process_reads_it_stores_nothing_and_stops_both(tmp_path):
    mf = Mailflow(tmp_path)
    mf.write_config("shop: {name: B, url: 'https://b.example', timezone: Europe/Paris}\n")
    name = "Mug " + "bleu " * 30
    rows = "".join(f"B-{n},c{n}@example.com,paid,2026-03-01 10:00,10.00,S{n},{name},1,10.00\n"
                   for n in range(service.READ_APART_BYTES // 150))
    export = mf.write("big.csv", "order_id,email,status,created_at,total,line_sku,line_name,"
                                 "line_quantity,line_price\n" + rows)
    assert export.stat().st_size >= service.READ_APART_BYTES
    assert mf("status").exit_code == 0
    process = subprocess.Popen(
        [sys.executable, "-m", "mailflow", "--db", str(mf.db), "--config", str(mf.config),
         "import", str(export)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    children = Path(f"/proc/{process.pid}/task/{process.pid}/children")
    # killed once the reader runs: inside the import's transaction
    wait_until(lambda: children.read_text().split(), process)
    assert process.poll() is None, "the import ended before it could be killed"
    reader = int(children.read_text().split()[0])
    process.kill()
    process.wait()
    deadline = time.monotonic() + 30
    while _alive(reader):  # it finds the pipe closed at its next batch
        assert time.monotonic() < deadline, "the reading process outlived the killed import"
        time.sleep(0.002)
    assert mf.scalar("SELECT count(*) FROM orders") == 0
    assert mf.scalar("SELECT count(*) FROM imports") == 0
    assert mf.scalar("PRAGMA integrity_check") == "ok"
