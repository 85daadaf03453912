"""Every input shops really produce imports; bad files change nothing; unusable rows are named.

Each hard input has its own small fixture in tests/fixtures/inputs/, written as the real bytes
a shop or a spreadsheet produces (BOMs, Windows-1252, UTF-16, CRLF). The shop's timezone is
Europe/Paris (see conftest), so naive times are read as Paris wall-clock time.
"""

from __future__ import annotations

import json

import pytest

NOW = "2026-02-01T12:00"


def imported(mailflow, name: str, *extra: str):
    path = mailflow.fixture(f"inputs/{name}")
    result = mailflow("import", path, "--now", NOW, "--json", *extra)
    return path, result


def order(mailflow, order_id: str) -> dict:
    rows = mailflow.query("SELECT * FROM orders WHERE id = ?", (order_id,))
    assert rows, f"order {order_id} was not imported"
    return rows[0]


def lines(mailflow, order_id: str) -> list[tuple]:
    return [(r["sku"], r["name"], r["quantity"], r["price"]) for r in mailflow.query(
        "SELECT * FROM order_lines WHERE order_id = ? ORDER BY position", (order_id,))]


def assert_clean_run(result, rows: int) -> dict:
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    report = result.json()
    assert report["files"][0]["format"] == "mailflow"
    assert report["files"][0]["kind"] == "orders"
    assert report["files"][0]["rows"] == rows
    assert report["files"][0]["rejected"] == []
    return report


# -- encodings, delimiters, line endings, quoting -----------------------------------------


def test_utf8_with_bom_header_is_recognised(mailflow):
    _, result = imported(mailflow, "utf8_bom.csv")
    assert_clean_run(result, rows=1)
    o = order(mailflow, "1001")
    assert (o["first_name"], o["last_name"], o["email"]) == ("Zoé", "Lefèvre", "zoe@example.com")
    assert lines(mailflow, "1001") == [("MUG-1", "Tasse à café", 1, "12.50")]


def test_windows_1252_is_decoded(mailflow):
    _, result = imported(mailflow, "cp1252.csv")
    assert_clean_run(result, rows=1)
    o = order(mailflow, "1002")
    assert o["first_name"] == "Zoé"
    assert o["total"] == "12.50"
    assert o["created_at"] == "2026-01-15T09:00:00Z"
    assert lines(mailflow, "1002") == [("MUG-1", "Tasse « Été » 12 €", 1, "12.50")]


def test_semicolon_delimiter(mailflow):
    _, result = imported(mailflow, "semicolon.csv")
    assert_clean_run(result, rows=2)
    assert order(mailflow, "1003")["total"] == "30.00"
    assert lines(mailflow, "1003") == [("TEE-1", "T-shirt, bleu", 2, "15.00"),
                                       ("CAP-1", "Casquette", 1, "0.00")]


def test_crlf_line_endings(mailflow):
    _, result = imported(mailflow, "crlf.csv")
    report = assert_clean_run(result, rows=3)
    assert report["orders"] == {"inserted": 2, "updated": 0}
    assert lines(mailflow, "1004") == [("A-1", "Alpha", 1, "10.00"), ("B-1", "Beta", 1, "10.00")]
    assert lines(mailflow, "1005") == [("C-1", "Gamma", 1, "5.00")]
    stored = [*mailflow.query("SELECT * FROM orders"), *mailflow.query("SELECT * FROM order_lines")]
    assert not [v for row in stored for v in row.values() if isinstance(v, str) and "\r" in v]


def test_quoted_newline_keeps_cell_and_later_line_numbers(mailflow):
    path, result = imported(mailflow, "quoted_newline.csv")
    assert result.exit_code == 1
    assert lines(mailflow, "1006") == [
        ("GIFT-1", "Carte cadeau\nMessage : « Joyeux anniversaire,\nMaman ! »", 1, "9.90")]
    assert order(mailflow, "1007")["created_at"] == "2026-01-16T09:00:00Z"
    # the bad date is on physical line 6: the quoted cell spans lines 2 to 4
    assert result.json()["files"][0]["rejected"] == [
        {"line": 6, "reason": "created_at: unreadable date 'le 16 janvier'"}]
    assert result.stderr.strip() == f"{path}:6: created_at: unreadable date 'le 16 janvier'"


def test_utf16_excel_unicode_text_tab_separated(mailflow):
    _, result = imported(mailflow, "utf16.txt")
    assert_clean_run(result, rows=1)
    o = order(mailflow, "1024")
    assert (o["first_name"], o["last_name"], o["total"]) == ("Zoé", "Lefèvre", "12.50")
    assert lines(mailflow, "1024") == [("MUG-1", "Tasse 12 €", 1, "12.50")]


# -- values -----------------------------------------------------------------------------------


def test_decimal_commas_and_thousands_separators(mailflow):
    _, result = imported(mailflow, "decimal_commas.csv")
    assert_clean_run(result, rows=2)
    first = order(mailflow, "1009")
    assert (first["subtotal"], first["shipping"], first["discount"], first["total"]) == (
        "1234.56", "4.90", "1234.56", "12.50")
    second = order(mailflow, "1010")  # non-breaking and narrow non-breaking spaces, a € sign
    assert (second["subtotal"], second["discount"], second["total"]) == ("1234.56", "1000.00",
                                                                          "234.56")
    assert lines(mailflow, "1010") == [("B-1", "Beta", 2, "1234.56")]


def test_empty_cell_and_quoted_empty_cell_both_mean_absent(mailflow):
    _, result = imported(mailflow, "empty_cells.csv")
    assert_clean_run(result, rows=2)
    columns = ("first_name", "last_name", "shipped_at", "tracking_number", "total", "status")
    plain, quoted = order(mailflow, "1011"), order(mailflow, "1012")
    assert {c: plain[c] for c in columns} == {c: quoted[c] for c in columns} == {
        "first_name": None, "last_name": None, "shipped_at": None, "tracking_number": None,
        "total": "10.00", "status": "paid"}
    assert lines(mailflow, "1011") == lines(mailflow, "1012") == [("A-1", "Alpha", 1, "10.00")]


# -- timestamps -------------------------------------------------------------------------------


def test_naive_timestamps_are_shop_time_winter_and_summer(mailflow):
    _, result = imported(mailflow, "naive_times.csv")
    assert_clean_run(result, rows=3)
    assert order(mailflow, "1013")["created_at"] == "2026-01-15T09:00:00Z"  # CET, +01:00
    assert order(mailflow, "1014")["created_at"] == "2026-07-15T08:00:00Z"  # CEST, +02:00
    assert order(mailflow, "1015")["created_at"] == "2026-03-22T13:05:00Z"  # 22/03/2026 14:05


def test_dst_gap_time_lands_one_hour_later(mailflow):
    """02:30 on 2026-03-29 never happens in Paris: read with the winter offset, i.e. 03:30 CEST."""
    _, result = imported(mailflow, "dst_gap.csv")
    assert_clean_run(result, rows=2)
    assert order(mailflow, "1016")["created_at"] == "2026-03-29T01:30:00Z"
    assert order(mailflow, "1017")["created_at"] == order(mailflow, "1016")["created_at"]


def test_dst_overlap_time_is_the_first_occurrence(mailflow):
    """02:30 on 2026-10-25 happens twice in Paris: a naive one is the first (CEST, +02:00);
    an explicit +01:00 picks the second."""
    _, result = imported(mailflow, "dst_overlap.csv")
    assert_clean_run(result, rows=2)
    assert order(mailflow, "1018")["created_at"] == "2026-10-25T00:30:00Z"
    assert order(mailflow, "1019")["created_at"] == "2026-10-25T01:30:00Z"


def test_offsets_are_respected(mailflow):
    _, result = imported(mailflow, "offsets.csv")
    assert_clean_run(result, rows=4)
    assert order(mailflow, "1020")["created_at"] == "2025-05-11T13:55:16Z"  # Shopify's -0400
    assert order(mailflow, "1021")["created_at"] == "2026-01-15T10:00:00Z"
    assert order(mailflow, "1022")["created_at"] == "2026-01-15T04:30:00Z"
    assert order(mailflow, "1023")["created_at"] == "2026-07-15T08:00:00Z"


# -- files that are not exports: exit 2, one line, nothing changed ------------------------------


@pytest.mark.parametrize(("name", "says"), [
    ("unterminated_quote.csv", ":3: a quoted cell is never closed (unterminated quote)"),
    ("image.png", "binary data"),
    ("orders.csv.gz", "binary data"),
    ("empty.csv", "the file is empty"),
    ("whitespace.csv", "the file is blank"),
    ("not_an_export.csv", "this CSV is not a Shopify, WooCommerce or mailflow export"),
    ("not_an_export.json", "this JSON is not a Shopify, WooCommerce or mailflow export"),
    ("invalid.json", ":4: not valid JSON"),
])
def test_bad_file_is_refused_and_changes_nothing(mailflow, name, says):
    _, seeded = imported(mailflow, "crlf.csv")
    assert seeded.exit_code == 0
    before = mailflow.dump()
    path, result = imported(mailflow, name)
    assert result.exit_code == 2
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1
    assert message.startswith(f"error: {path}")
    assert says in message
    assert "Traceback" not in result.stderr
    assert result.json()["files"][0]["error"] == message.removeprefix("error: ")
    assert mailflow.dump() == before


def test_second_file_bad_first_still_imports(mailflow):
    """Each file is its own transaction (service docstring): the good one commits, the bad one
    changes nothing, not even its valid first row, and the exit code says the worst."""
    good = mailflow.fixture("inputs/export_monday.csv")
    bad = mailflow.fixture("inputs/unterminated_quote.csv")
    result = mailflow("import", good, bad, "--now", NOW, "--json")
    assert result.exit_code == 2
    report = result.json()
    assert [f["path"] for f in report["files"]] == [str(good), str(bad)]
    assert report["files"][0]["rows"] == 2 and "error" not in report["files"][0]
    assert "unterminated quote" in report["files"][1]["error"]
    assert result.stderr.strip() == f"error: {report['files'][1]['error']}"
    assert sorted(r["id"] for r in mailflow.query("SELECT id FROM orders")) == ["1050", "1051"]
    assert [r["path"] for r in mailflow.query("SELECT path FROM imports")] == [str(good)]


def test_same_file_named_twice_imports_once(mailflow):
    path = mailflow.fixture("inputs/crlf.csv")
    result = mailflow("import", path, path, "--now", NOW, "--json")
    assert result.exit_code == 0
    files = result.json()["files"]
    assert files[1]["skipped"] == "already imported"
    assert result.json()["orders"] == {"inserted": 2, "updated": 0}
    assert mailflow.scalar("SELECT count(*) FROM order_lines") == 3
    assert mailflow.scalar("SELECT count(*) FROM imports") == 1


# -- rows that cannot be used ----------------------------------------------------------------


def test_unusable_rows_are_rejected_and_the_rest_imports(mailflow):
    path, result = imported(mailflow, "rejected_rows.csv")
    assert result.exit_code == 1
    expected = [
        {"line": 3, "reason": "no order id"},
        {"line": 4, "reason": "created_at: impossible date '31/02/2026 10:00'"},
        {"line": 5, "reason": "total: unreadable amount 'dix euros'"},
    ]
    report = result.json()
    assert report["files"][0]["rejected"] == expected
    assert report["files"][0]["rows"] == 7
    assert result.stderr.splitlines() == [f"{path}:{r['line']}: {r['reason']}" for r in expected]
    ids = sorted(r["id"] for r in mailflow.query("SELECT id FROM orders"))
    assert ids == ["1040", "1043", "1044", "1045"]
    assert mailflow.scalar("SELECT rejected FROM imports") == 3


def test_invalid_or_missing_email_keeps_the_order(mailflow):
    _, result = imported(mailflow, "rejected_rows.csv")
    assert result.exit_code == 1
    assert all(r["line"] not in (6, 7) for r in result.json()["files"][0]["rejected"])
    invalid, missing = order(mailflow, "1043"), order(mailflow, "1044")
    assert invalid["email"] is None and invalid["email_raw"] == "not-an-address"
    assert invalid["email_problem"].startswith("invalid_email: ")
    assert missing["email"] is None and missing["email_problem"] == "missing_email"
    assert order(mailflow, "1040")["email_problem"] is None


def test_out_of_range_values_are_rejected_rows(mailflow):
    path, result = imported(mailflow, "extreme_values.csv")
    assert result.exit_code == 1
    assert "internal error" not in result.stderr
    rejected = result.json()["files"][0]["rejected"]
    assert [r["line"] for r in rejected] == [3, 4, 5, 6, 7, 8, 9]
    assert "out of range" in rejected[0]["reason"] and "out of range" in rejected[1]["reason"]
    assert rejected[2]["reason"] == "line quantity: quantity '99999999999999999999' is too large"
    assert rejected[4]["reason"] == "total: unreadable amount '1e5'"
    assert result.stderr.splitlines()[0].startswith(f"{path}:3: created_at: ")
    assert [r["id"] for r in mailflow.query("SELECT id FROM orders")] == ["1070"]


def test_json_order_with_unusable_lines_or_amount_is_rejected(mailflow):
    path, result = imported(mailflow, "orders_bad_lines.json")
    assert result.exit_code == 1
    assert result.json()["files"][0]["rejected"] == [
        {"line": 6, "reason": "lines: expected a list of objects (sku, name, quantity, price)"},
        {"line": 8, "reason": "total: unreadable amount nan"},
    ]
    assert result.stderr.splitlines()[0] == (
        f"{path}:6: lines: expected a list of objects (sku, name, quantity, price)")
    assert order(mailflow, "1060")["total"] == "12.50"
    assert lines(mailflow, "1060") == [("A-1", "Alpha", 1, "12.5")]


# -- the same orders again -----------------------------------------------------------------------


def test_reimporting_the_identical_file_changes_nothing(mailflow):
    path, first = imported(mailflow, "export_monday.csv")
    assert first.exit_code == 0
    before = mailflow.dump()
    second = mailflow("import", path, "--now", "2026-02-02T12:00", "--json")
    assert second.exit_code == 0
    report = second.json()
    assert report["files"][0]["skipped"] == "already imported"
    assert report["orders"] == {"inserted": 0, "updated": 0} and report["status_changes"] == 0
    assert mailflow.dump() == before
    human = mailflow("import", path, "--now", "2026-02-02T12:00")
    assert human.stdout.splitlines()[0] == f"{path}: already imported, nothing to do"


def test_newer_export_updates_the_order_and_records_its_status_change(mailflow):
    _, monday = imported(mailflow, "export_monday.csv")
    assert monday.exit_code == 0
    untouched = order(mailflow, "1051")
    tuesday = mailflow("import", mailflow.fixture("inputs/export_tuesday.csv"),
                       "--now", "2026-02-02T12:00", "--json")
    assert tuesday.exit_code == 0
    report = tuesday.json()
    assert report["orders"] == {"inserted": 0, "updated": 1}
    assert report["status_changes"] == 1
    shipped = order(mailflow, "1050")
    assert (shipped["status"], shipped["shipped_at"], shipped["tracking_number"]) == (
        "shipped", "2026-01-16T14:30:00Z", "6A123")
    events = mailflow.query("SELECT status, at, source FROM order_status_events"
                            " WHERE order_id = '1050' ORDER BY at")
    assert events == [{"status": "paid", "at": "2026-01-15T09:05:00Z", "source": "export"},
                      {"status": "shipped", "at": "2026-01-16T14:30:00Z", "source": "export"}]
    assert order(mailflow, "1051") == untouched


def test_same_rows_in_a_resaved_file_change_nothing(mailflow):
    """Not byte-identical (`;`, CRLF) but the same orders: recorded as read, nothing updated."""
    _, monday = imported(mailflow, "export_monday.csv")
    assert monday.exit_code == 0
    before = mailflow.dump()
    _, resaved = imported(mailflow, "export_monday_resaved.csv")
    assert resaved.exit_code == 0
    report = resaved.json()
    assert "skipped" not in report["files"][0] and report["files"][0]["rows"] == 2
    assert report["orders"] == {"inserted": 0, "updated": 0} and report["status_changes"] == 0
    after = mailflow.dump()
    assert len(after.pop("imports")) == len(before.pop("imports")) + 1
    after.pop("import_files"), before.pop("import_files")  # how the file looked when read
    assert after == before


def test_orders_hashed_by_the_first_scheme_still_look_unchanged(mailflow, monkeypatch):
    """A store written before the content hash moved to marshal (its hashes are hex of the
    repr): the same orders in a new file are still recognised as unchanged."""
    from mailflow.store import digest, writes

    monkeypatch.setattr(writes, "content_hash", digest._repr_hash)
    imported(mailflow, "export_monday.csv")
    assert not any(h.startswith("m") for h in
                   (r["content_hash"] for r in mailflow.query("SELECT content_hash FROM orders")))
    monkeypatch.undo()
    _, resaved = imported(mailflow, "export_monday_resaved.csv")
    assert resaved.exit_code == 0
    assert resaved.json()["orders"] == {"inserted": 0, "updated": 0}


# -- output ------------------------------------------------------------------------------------


def test_json_run_prints_only_json_on_stdout(mailflow):
    good = mailflow.fixture("inputs/rejected_rows.csv")
    bad = mailflow.fixture("inputs/image.png")
    result = mailflow("import", good, bad, "--now", NOW, "--json")
    assert result.exit_code == 2
    report = json.loads(result.stdout)
    assert set(report) >= {"files", "orders", "carts", "status_changes"}
    assert result.stdout.lstrip().startswith("{") and result.stdout.rstrip().endswith("}")
    assert f"{good}:3: no order id" in result.stderr.splitlines()
    assert f"{good}:3" not in result.stdout.replace(f'"path": "{good}"', "")
