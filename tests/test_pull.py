"""`mailflow pull` and `mailflow run` with a live source, through the real CLI, against the fake
WooCommerce REST API of tests/fakes/woocommerce_api.py over real HTTP (its documented
payloads: tests/fixtures/api/woocommerce/SOURCES.md): every page in, nothing doubled, the
watermark moved only by a pull that went through, a first pull's history kept from sending,
an API down or refusing leaving what the store holds to be sent."""

from __future__ import annotations

import pytest
from fakes.woocommerce_api import KEY, SECRET, FakeWooCommerce

NOW = "2026-03-20T19:00"  # Paris, 18:00 UTC: after the fixture's orders
LATER = "2026-03-22T14:00"  # the fake's own clock starts at 12:00 UTC that day


@pytest.fixture
def fake():
    with FakeWooCommerce() as shop:
        yield shop


@pytest.fixture
def shop(mailflow, monkeypatch, fake):
    for name, value in (("MAILFLOW_SECRET", "s"), ("WC_KEY", KEY), ("WC_SECRET", SECRET)):
        monkeypatch.setenv(name, value)
    assert mailflow("init", mailflow.folder / "p").exit_code == 0
    mailflow.config = mailflow.folder / "p" / "rules.yaml"
    text = mailflow.config.read_text()
    head, rest = text.split("\nsources:", 1)
    rules = rest.split("\nrules:", 1)[1]
    mailflow.config.write_text(
        f"{head}\nsources:\n  - path: exports/orders*.csv\n  - platform: woocommerce\n"
        f"    url: {fake.url}\n    key_env: WC_KEY\n    secret_env: WC_SECRET\n    page_size: 3\n"
        f"\nrules:{rules}")
    return mailflow


def pulled(shop, *options: str, now: str = NOW, code: int = 0) -> dict:
    result = shop("pull", "--json", "--now", now, *options)
    assert result.exit_code == code, result.stderr
    return result.json()


def watermark(shop) -> str | None:
    return shop.scalar("SELECT watermark FROM sources WHERE name = 'woocommerce'")


def test_a_first_pull_brings_every_page_and_sends_nothing_of_history(shop, fake):
    report = pulled(shop)
    (source,) = report["sources"]
    assert source["first"] and source["error"] is None
    assert source["fetched"] == {"orders": 7, "checkouts": 1, "customers": 2}
    assert report["orders"] == {"inserted": 7, "updated": 0}
    order_pages = [r for r in fake.requests if r.path.endswith("/orders")
                   and r.params.get("status") == "any"]
    assert len(order_pages) >= 3  # three per page
    assert shop.scalar("SELECT count(*) FROM orders") == 7
    assert shop.scalar("SELECT count(*) FROM carts") == 1
    assert watermark(shop) == "2026-03-20T17:42:00Z"  # the newest change the shop reported
    dry = shop("send", "--dry-run", "--json", "--now", NOW).json()["messages"]
    reasons = {m["reason"] for m in dry}
    assert "history" in reasons and reasons <= {"history", "stale"}, dry  # nothing goes
    again = pulled(shop)
    assert again["orders"] == {"inserted": 0, "updated": 0}  # the same window: nothing new


def test_the_next_pull_asks_from_the_watermark_and_sends_what_changed(shop, fake):
    pulled(shop)
    shop("send", "--now", NOW)
    fake.modify(1003, status="processing", date_paid_gmt="2026-03-22T11:00:00",
                date_paid="2026-03-22T12:00:00")
    fake.requests.clear()
    report = pulled(shop, now=LATER)
    asked = {r.params.get("modified_after") for r in fake.requests if r.path.endswith("/orders")}
    assert "2026-03-20T17:32:00" in asked  # the watermark, minus the 10-minute overlap
    assert report["orders"] == {"inserted": 0, "updated": 1}
    assert watermark(shop) > "2026-03-20T17:42:00Z"
    sent = shop("send", "--json", "--now", LATER).json()["messages"]
    news = {(m["rule"], m["to"]) for m in sent if m["status"] == "sent"}
    # 1003's transfer came: not history, news (and the draft's reminder, due after the pull)
    assert news == {("payment-received", "chloe.bernard@example.fr"),
                    ("abandoned-cart", "noah.petit@example.com")}


def test_a_pull_that_stops_midway_keeps_its_watermark_and_the_next_one_completes(shop, fake):
    fake.fail("429", "/orders", retry_after="3600")  # "come back in an hour": not this tick
    failed = pulled(shop, code=4)
    assert "unavailable" in failed["sources"][0]["error"]
    assert watermark(shop) is None
    fake.before(lambda r: r.params.get("page") == "2", lambda: fake.fail("429", "/orders",
                                                                         retry_after="3600"))
    midway = pulled(shop, code=4)
    assert midway["orders"]["inserted"] == 3  # the first page is kept: imports are idempotent
    assert watermark(shop) is None
    done = pulled(shop)
    assert done["orders"] == {"inserted": 4, "updated": 0}
    assert shop.scalar("SELECT count(*) FROM orders") == 7
    assert watermark(shop) == "2026-03-20T17:42:00Z"
    state = shop.query("SELECT failure, failed_at FROM sources")[0]
    assert state == {"failure": None, "failed_at": None}


def test_refused_credentials_stop_the_source_with_exit_3_and_name_no_secret(shop, fake,
                                                                         monkeypatch):
    monkeypatch.setenv("WC_SECRET", "cs_wrong")
    result = shop("pull", "--now", NOW)
    assert result.exit_code == 3
    assert "refused mailflow's credentials (HTTP 401)" in result.stderr
    assert "cs_wrong" not in result.stderr and SECRET not in result.stderr
    assert shop.scalar("SELECT count(*) FROM orders") == 0


def test_run_sends_what_the_store_holds_while_the_api_is_down(shop, fake):
    shop.write("p/exports/orders_1.csv", "order_id,email,accepts_marketing,status,created_at,"
               "total,line_name,line_quantity,line_price\nF-1,ana@example.com,yes,paid,"
               "2026-03-20 18:55,10.00,Mug,1,10.00\n")
    fake.fail("429", "/orders", retry_after="3600")
    result = shop("run", "--json", "--now", NOW)
    assert result.exit_code == 4, result.stderr
    assert "woocommerce:" in result.stderr and "unavailable" in result.stderr
    sent = [(m["rule"], m["to"]) for m in result.json()["send"]["messages"]
            if m["status"] == "sent"]
    assert ("order-confirmation", "ana@example.com") in sent


def test_a_dry_run_and_check_sources_count_and_write_nothing(shop, fake):
    shop("status")
    before = shop.dump()
    dry = pulled(shop, "--dry-run")
    assert dry["sources"][0]["fetched"]["orders"] == 7
    check = shop("check", "--sources", "--now", NOW)
    assert "woocommerce: would fetch 7 orders, 1 checkouts, 2 customers" in check.stdout
    assert shop.dump() == before


def test_since_asks_for_a_window_of_its_own(shop, fake):
    pulled(shop, "--since", "1h")
    asked = {r.params.get("modified_after") for r in fake.requests if r.path.endswith("/orders")}
    assert "2026-03-20T17:00:00" in asked  # --now minus 1h, in UTC


def test_status_shows_each_source_its_watermark_and_its_last_failure(shop, fake):
    pulled(shop)
    fake.fail("429", "/orders", retry_after="3600")
    pulled(shop, now=LATER, code=4)
    shown = " ".join(shop("status", "--now", LATER).stdout.split())  # rich wraps the table
    assert ("source woocommerce pulled 2026-03-20T18:00:00Z, watermark 2026-03-20T17:42:00Z;"
            " failed at 2026-03-22T13:00:00Z: woocommerce:") in shown
    assert shop("status", "--json").json()["sources"][0]["watermark"] == "2026-03-20T17:42:00Z"
