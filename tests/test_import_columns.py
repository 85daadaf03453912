"""A column named twice, and a cell too long to print: what an import says about them."""

from __future__ import annotations

HEADER = "order_id,email,status,created_at,total,line_name,line_quantity,line_price"


def test_a_column_named_twice_with_different_values_refuses_the_file(mailflow):
    export = mailflow.write("twice.csv", f"{HEADER},E-mail,Email\n"
                            "A-1,ana@example.com,paid,2026-03-01 10:00,10.00,Mug,1,10.00,,"
                            "ana@example.com\n"
                            "A-2,bob@example.com,paid,2026-03-01 10:00,10.00,Mug,1,10.00,,"
                            "zoe@example.com\n")
    assert mailflow("status").exit_code == 0
    before = mailflow.dump()
    result = mailflow("import", export)
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"error: {export}:3: the column 'email' appears 2 times (columns 2, 10) with different"
        " values: mailflow cannot tell which to read; remove or rename the others")
    assert mailflow.dump() == before


def test_a_column_named_twice_with_the_same_values_imports_with_a_warning(mailflow):
    export = mailflow.write("twice.csv", f"{HEADER},Status\n"
                            "A-1,ana@example.com,paid,2026-03-01 10:00,10.00,Mug,1,10.00,paid\n"
                            "A-2,bob@example.com,shipped,2026-03-01 10:00,10.00,Mug,1,10.00,"
                            " shipped\n")
    result = mailflow("import", export, "--json")
    assert result.exit_code == 1
    (warning,) = result.json()["files"][0]["warnings"]
    assert warning == ("the column 'status' appears 2 times (columns 3, 9), with the same values"
                       " on every row: read once")
    assert mailflow.scalar("SELECT count(*) FROM orders") == 2


def test_a_rejected_rows_message_quotes_at_most_80_characters_of_its_cell(mailflow):
    huge = "9" * 50_000 + "x"
    export = mailflow.write("long.csv", f"{HEADER}\n"
                            f"A-1,ana@example.com,paid,2026-03-01 10:00,{huge},Mug,1,10.00\n"
                            "A-2,bob@example.com,paid,2026-03-01 10:00,10.00,Mug,1,10.00\n")
    result = mailflow("import", export, "--json")
    assert result.exit_code == 1
    (rejected,) = result.json()["files"][0]["rejected"]
    assert rejected["reason"] == f"total: unreadable amount '{'9' * 80}'… (50,001 characters)"
    assert len(result.stderr) < 300
    assert mailflow.scalar("SELECT count(*) FROM orders") == 1
