"""A big export is read in a second process (issue 15, 1): what it stores and says is
exactly what reading it here stores and says, rejections, warnings and refusals included.
The size from which it happens is lowered so that small fixtures take that path."""

from __future__ import annotations

import pytest
from conftest import Mailflow

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
