"""`mailflow run`, the cron entry point: new exports in, due mail out, quiet unless needed."""

from __future__ import annotations

from mailflow.delivery.lock import run_lock

HEADER = "order_id,email,first_name,status,created_at,total,line_name,line_quantity,line_price\n"
ROW = "{id},{email},Ana,paid,2026-03-02 10:00,10.00,Mug,1,10.00\n"


def project(mailflow, extra: str = "") -> None:
    mailflow("init", mailflow.folder / "p")
    mailflow.config = mailflow.folder / "p" / "rules.yaml"
    mailflow.config.write_text(f"""\
shop: {{name: Boutique, url: "https://boutique.example", timezone: Europe/Paris, locale: fr}}
sender: {{from: "Boutique <bonjour@boutique.example>"}}
delivery:
  transport: file
  dir: outbox
{extra}
sources:
  - path: exports/orders_*.csv
rules:
  - {{name: confirmation, on: order.placed, template: order_confirmation}}
""")


def export(mailflow, name: str, *orders: tuple[str, str]) -> None:
    rows = "".join(ROW.format(id=i, email=e) for i, e in orders)
    (mailflow.folder / "p" / "exports" / name).write_text(HEADER + rows, encoding="utf-8")


def outbox(mailflow) -> list[str]:
    """The .eml files, without the hash that keeps their names unique."""
    return sorted(p.name.rsplit("-", 1)[0] + ".eml"
                  for p in (mailflow.folder / "p" / "outbox").glob("*.eml"))


def test_run_imports_new_exports_then_sends_and_a_second_run_does_nothing(mailflow):
    project(mailflow)
    export(mailflow, "orders_2026-03-02.csv", ("A-1", "ana@example.com"))
    first = mailflow("run", "--now", "2026-03-02T10:05")
    assert first.exit_code == 0, first.stderr
    assert "orders_2026-03-02.csv: mailflow orders, 1 rows" in first.stdout
    assert outbox(mailflow) == ["confirmation_order_A-1.eml"]
    quiet = mailflow("run", "--quiet", "--now", "2026-03-02T10:10")
    assert (quiet.exit_code, quiet.stdout, quiet.stderr) == (0, "", "")
    export(mailflow, "orders_2026-03-03.csv", ("B-1", "bob@example.com"))
    assert mailflow("run", "--quiet", "--now", "2026-03-02T10:15").exit_code == 0
    assert outbox(mailflow) == ["confirmation_order_A-1.eml", "confirmation_order_B-1.eml"]


def test_quiet_run_speaks_when_a_human_is_needed(mailflow):
    project(mailflow)
    (mailflow.folder / "p" / "exports" / "orders_bad.csv").write_text(
        "order_id,email,status,created_at\nX,x@example.com,paid,not a date\n", encoding="utf-8")
    result = mailflow("run", "--quiet", "--now", "2026-03-02T10:05")
    assert result.exit_code == 1
    assert "orders_bad.csv:2: created_at: unreadable date 'not a date'" in result.stderr


def test_a_second_run_while_one_holds_the_lock_exits_0_at_once(mailflow):
    project(mailflow)
    export(mailflow, "orders_1.csv", ("A-1", "ana@example.com"))
    mailflow("status")
    with run_lock(mailflow.db) as holding:
        assert holding
        result = mailflow("run", "--now", "2026-03-02T10:05")
    assert result.exit_code == 0
    assert "another mailflow run holds the lock" in result.stderr
    assert not (mailflow.folder / "p" / "outbox").exists()
    assert mailflow.scalar("SELECT count(*) FROM orders") == 0


def test_rate_limit_keeps_what_does_not_fit_for_the_next_run(mailflow):
    project(mailflow, extra="  rate_limit: 2/h")
    export(mailflow, "orders_1.csv", *[(f"A-{i}", f"c{i}@example.com") for i in range(5)])
    assert mailflow("run", "--now", "2026-03-02T10:05").exit_code == 0
    assert len(outbox(mailflow)) == 2
    assert mailflow("run", "--now", "2026-03-02T10:30").exit_code == 0
    assert len(outbox(mailflow)) == 2  # the hour is not over
    assert mailflow("run", "--now", "2026-03-02T11:06").exit_code == 0
    assert len(outbox(mailflow)) == 4
