"""WooCommerce REST API `wc/v3` as a live source: `fetch()` with a real HttpClient, over real
HTTP, to the fake of tests/fakes/woocommerce_api.py (documented payload shapes in
tests/fixtures/api/woocommerce/). `sleep` records the waits and the clock is fixed: nothing
sleeps but the timeout test, whose client gives up after 1 s."""

from __future__ import annotations

import dataclasses
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fakes.woocommerce_api import FIXTURES, KEY, SECRET, FakeWooCommerce, fixture

from mailflow.errors import ConfigError, SourceError, SourceRefused, SourceUnavailable
from mailflow.importing import woocommerce as rest
from mailflow.importing.api.base import ApiSettings, Batch
from mailflow.importing.api.client import HttpClient
from mailflow.importing.api.woocommerce import WooCommerceApi, error_detail
from mailflow.importing.formats import ParseContext
from mailflow.records import Cart, Customer, Line, Order, Rejected

PARIS = ZoneInfo("Europe/Paris")
SINCE = datetime(2026, 3, 1, tzinfo=UTC)
NOW = datetime(2026, 3, 22, 12, 0, tzinfo=UTC)
ENV = {"WC_KEY": KEY, "WC_SECRET": SECRET}
DOCUMENTED = Path(__file__).parent / "fixtures" / "woocommerce"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def settings(fake: FakeWooCommerce, **options: object) -> ApiSettings:
    values: dict = {"name": "boutique", "platform": "woocommerce", "url": fake.url,
                    "key_env": "WC_KEY", "secret_env": "WC_SECRET", "page_size": 3, **options}
    return ApiSettings(**values)


def pull(fake: FakeWooCommerce, *, since: datetime = SINCE, sleeps: list[float] | None = None,
         client: HttpClient | None = None, **options: object) -> list[Batch]:
    platform = WooCommerceApi()
    source = settings(fake, **options)
    waits = [] if sleeps is None else sleeps
    opened = client or platform.open(source, ENV, sleep=waits.append, clock=lambda: NOW)
    with opened:
        return list(platform.fetch(opened, source, since, PARIS))


def records(batches: list[Batch], what: str | None = None) -> list:
    return [r for b in batches if what in (None, b.what) for r in b.records]


def latest(batches: list[Batch]) -> dict[tuple[type, str], Order | Cart]:
    """Each order and cart at the last version the pull yielded."""
    seen: dict[tuple[type, str], Order | Cart] = {}
    for record in records(batches):
        if isinstance(record, Order):
            seen[Order, record.order_id] = record
        elif isinstance(record, Cart):
            seen[Cart, record.cart_id] = record
    return seen


def assert_nothing_missed(batches: list[Batch], fake: FakeWooCommerce, since: datetime = SINCE) -> None:
    """Every order and draft of the fake's final state changed since `since` was yielded,
    and the last time at its final version."""
    ctx = ParseContext("fake", PARIS, NOW)
    got = latest(batches)
    for item in fake.orders.values():
        if item["status"] == "trash" or at(item["date_modified_gmt"]) <= since:
            continue
        draft = item["status"] == "checkout-draft"
        expected = rest._cart(item, 0, ctx) if draft else rest._order(item, 0, ctx)
        key = (Cart if draft else Order, str(item["id"]))
        assert key in got, f"order {item['id']} was missed"
        assert dataclasses.replace(got[key], line=0) == expected, f"order {item['id']} is stale"


def order_ids(batches: list[Batch]) -> list[str]:
    return [r.order_id for r in records(batches, "orders") if isinstance(r, Order)]


def listing(fake: FakeWooCommerce, status: str = "any") -> list[dict[str, str]]:
    return [r.params for r in fake.requests
            if r.path.endswith("/orders") and r.params.get("status") == status]


# --- the fixtures are the documented shapes ---------------------------------------------------

def test_fixture_orders_and_customers_have_exactly_the_documented_fields():
    order = json.loads((DOCUMENTED / "woocommerce_rest_v3_orders_list_example.json").read_text())[0]
    for item in fixture("orders.json"):
        assert list(item) == list(order)
        assert list(item["billing"]) == list(order["billing"])
        assert list(item["line_items"][0]) == list(order["line_items"][0])
    customers = fixture("customers.json")
    documented = [c for c in customers if c["id"] in (25, 26)]  # verbatim from the docs
    assert len(documented) == 2
    for item in customers:
        assert list(item) == list(documented[0])
    assert (FIXTURES / "SOURCES.md").is_file()


# --- paging -----------------------------------------------------------------------------------

def test_pages_orders_then_drafts_then_customers_with_the_documented_query():
    with FakeWooCommerce() as fake:
        batches = pull(fake)
        assert [(b.what, len(b.records)) for b in batches] == [
            ("orders", 3), ("orders", 3), ("orders", 1), ("checkouts", 1), ("customers", 2)]
        pages = listing(fake)
        assert [p["page"] for p in pages] == ["1", "2", "3", "1"]  # then one catch-up round
        assert pages[0] == {"status": "any", "modified_after": "2026-03-01T00:00:00",
                            "dates_are_gmt": "true", "orderby": "id", "order": "asc",
                            "per_page": "3", "page": "1"}
        # the catch-up asks for what changed since the first round began (the fake's Date)
        assert pages[3]["modified_after"] == "2026-03-22T11:59:01"
        assert [p["page"] for p in listing(fake, "checkout-draft")] == ["1", "1"]
        customers = [r.params for r in fake.requests if r.path.endswith("/customers")]
        assert customers == [{"orderby": "id", "order": "desc", "per_page": "3", "page": "1"}]
        assert_nothing_missed(batches, fake)
    assert [b.newest for b in batches] == [
        at("2026-03-20T11:40:20"), at("2026-03-20T15:30:00"), at("2026-03-20T16:45:00"),
        at("2026-03-20T17:42:00"), at("2026-03-20T09:16:10")]


def test_the_link_header_is_not_followed_to_another_host_and_pages_stop_at_the_last():
    # the fake's Link header names https://boutique.example: following it would fail
    with FakeWooCommerce() as fake:
        batches = pull(fake, page_size=7)
        assert [p["page"] for p in listing(fake)] == ["1", "1"]
    assert len(records(batches, "orders")) == 7


def test_a_page_never_exceeds_the_apis_largest():
    with FakeWooCommerce() as fake:
        pull(fake, page_size=250)
        assert {p["per_page"] for p in listing(fake)} == {"100"}


def test_customers_stop_at_the_first_page_reaching_older_accounts():
    with FakeWooCommerce() as fake:
        batches = pull(fake, page_size=1)
        pages = [r.params["page"] for r in fake.requests if r.path.endswith("/customers")]
    assert pages == ["1", "2", "3"]  # 31, 30, then 26 (2017): no page 4
    people = records(batches, "customers")
    assert people == [
        Customer("lea.dubois@example.fr", 1, "Léa", "Dubois", None, True, at("2026-03-20T09:10:00")),
        Customer("noah.petit@example.com", 2, "Noah", "Petit", "en", None, at("2026-03-19T18:00:00"))]


def test_an_order_modified_between_two_pages_is_yielded_at_its_final_version():
    with FakeWooCommerce() as fake:
        fake.before(lambda r: r.params.get("status") == "any" and r.params.get("page") == "2",
                    lambda: fake.modify(1002, status="cancelled"))
        batches = pull(fake)
        assert_nothing_missed(batches, fake)
        assert latest(batches)[Order, "1002"].status == "cancelled"
        # it was read before the change, then again by the catch-up round
        assert [p["page"] for p in listing(fake)] == ["1", "2", "3", "1", "1"]


def test_an_order_joining_the_listing_between_pages_shifts_nothing_out_of_it():
    since = at("2026-03-20T12:00:00")  # 1004 to 1007 changed since; 1001 to 1003 did not
    with FakeWooCommerce() as fake:
        # 1001 joins at the head of the id-sorted listing: 1006 moves from page 1 to page 2
        fake.before(lambda r: r.params.get("status") == "any" and r.params.get("page") == "2",
                    lambda: fake.modify(1001, status="completed"))
        batches = pull(fake, since=since)
        assert_nothing_missed(batches, fake, since)
        # page 2 saw X-WP-Total go from 4 to 5: the listing was read again from page 1
        assert [p["page"] for p in listing(fake)][:4] == ["1", "2", "1", "2"]


def test_an_order_created_between_two_pages_is_not_missed():
    with FakeWooCommerce() as fake:
        fake.before(lambda r: r.params.get("status") == "any" and r.params.get("page") == "2",
                    lambda: fake.create(like=1001, new_id=1009))
        batches = pull(fake)
        assert_nothing_missed(batches, fake)
        # page 2 saw X-WP-Total go from 7 to 8: read again from page 1, where nothing was new
        assert [p["page"] for p in listing(fake)][:5] == ["1", "2", "1", "2", "3"]
    assert order_ids(batches) == ["1001", "1002", "1003", "1004", "1005", "1006", "1007", "1009"]


def test_an_order_trashed_between_two_pages_shifts_nothing_out_of_them():
    with FakeWooCommerce() as fake:
        # without the re-reading, 1004 would slide from page 2 onto page 1, already read
        fake.before(lambda r: r.params.get("status") == "any" and r.params.get("page") == "2",
                    lambda: fake.modify(1002, status="trash"))
        batches = pull(fake)
        assert_nothing_missed(batches, fake)
        assert [p["page"] for p in listing(fake)][:4] == ["1", "2", "1", "2"]


def test_a_listing_that_never_stops_changing_is_unavailable_not_half_read():
    with FakeWooCommerce() as fake:
        for n in range(10):
            fake.before(lambda r: r.params.get("status") == "any" and r.params.get("page") == "2",
                        lambda n=n: fake.create(like=1001, new_id=2000 + n))
        with pytest.raises(SourceUnavailable, match="kept changing"):
            pull(fake)


def test_an_older_woocommerce_listing_drafts_under_any_still_makes_one_cart():
    with FakeWooCommerce(drafts_in_any=True) as fake:
        batches = pull(fake)
    assert "1008" not in order_ids(batches)
    assert [r.cart_id for r in records(batches, "checkouts")] == ["1008"]


# --- faults -----------------------------------------------------------------------------------

def test_429_waits_as_long_as_retry_after_says():
    sleeps: list[float] = []
    with FakeWooCommerce() as fake:
        fake.fail("429", path="/orders", retry_after="7")
        batches = pull(fake, sleeps=sleeps)
        assert_nothing_missed(batches, fake)
    assert sleeps == [7.0]


def test_401_is_refused_in_a_line_naming_no_credential():
    for env in ({"WC_KEY": "ck_wrong", "WC_SECRET": SECRET}, ENV):
        with FakeWooCommerce() as fake:
            if env is ENV:
                fake.fail("401")
            platform, source = WooCommerceApi(), settings(fake)
            with platform.open(source, env, sleep=lambda s: None, clock=lambda: NOW) as client, \
                    pytest.raises(SourceRefused) as refused:
                list(platform.fetch(client, source, SINCE, PARIS))
        line = str(refused.value)
        assert "\n" not in line and "HTTP 401" in line and "/wp-json/wc/v3/orders" in line
        for secret in (KEY, SECRET, "ck_wrong", "WC_KEY", "WC_SECRET"):
            assert secret not in line


def test_500_then_success():
    sleeps: list[float] = []
    with FakeWooCommerce() as fake:
        fake.fail("500", path="/orders")
        batches = pull(fake, sleeps=sleeps)
        assert_nothing_missed(batches, fake)
    assert sleeps == [1.0]


def test_a_server_that_does_not_answer_in_time_is_unavailable():
    with FakeWooCommerce() as fake:
        fake.fail("hang", seconds=5)
        fake.fail("hang", seconds=5)
        waits: list[float] = []
        client = HttpClient("boutique", fake.url, auth=(KEY, SECRET), timeout=timedelta(seconds=1),
                            sleep=waits.append, clock=lambda: NOW, attempts=2)
        started = time.monotonic()
        with pytest.raises(SourceUnavailable, match=r"no answer within 1s.*after 2 attempts"):
            pull(fake, client=client)
        assert time.monotonic() - started < 4
    assert waits == [1.0]


def test_malformed_json_is_a_source_error():
    with FakeWooCommerce() as fake:
        fake.fail("malformed", path="/orders")
        with pytest.raises(SourceError, match="not JSON") as error:
            pull(fake)
    assert not isinstance(error.value, SourceUnavailable)


def test_an_error_document_is_said_in_one_line():
    with FakeWooCommerce() as fake, pytest.raises(SourceError) as error:
        pull(fake, url=fake.url + "/boutique")
    assert str(error.value) == (
        f"boutique: {fake.url}/boutique/wp-json/wc/v3/orders answered HTTP 404: WooCommerce says:"
        " No route was found matching the URL and request method (rest_no_route)")
    assert error_detail(b"<html>oops</html>") is None


def test_credentials_come_from_the_environment():
    with FakeWooCommerce() as fake, pytest.raises(ConfigError, match="WC_SECRET"):
        WooCommerceApi().open(settings(fake), {"WC_KEY": KEY}, sleep=lambda s: None, clock=lambda: NOW)


# --- what each kind of order becomes -----------------------------------------------------------

COMMON = {"currency": "EUR", "discount": "0.00", "shipping": "4.90", "shipping_method": "Colissimo",
          "delivered_at": None, "cancelled_at": None, "pickup_point": None, "tracking_url": None}
LEA = {"email": "lea.dubois@example.fr", "first_name": "Léa", "last_name": "Dubois",
       "shipping_address": "12 rue des Lilas, 75011 Paris, FR"}
HUGO = {"email": "hugo.martin@example.fr", "first_name": "Hugo", "last_name": "Martin",
        "shipping_address": "3 place Bellecour, 69002 Lyon, FR"}
CHLOE = {"email": "chloe.bernard@example.fr", "first_name": "Chloé", "last_name": "Bernard",
         "shipping_address": "8 quai des Chartrons, 33000 Bordeaux, FR"}
NOAH = {"email": "noah.petit@example.com", "first_name": "Noah", "last_name": "Petit",
        "shipping_address": "21 Canal Street, M1 3HE Manchester, GB"}
SOAP = ("SAV-OLV", "Savon à l'huile d'olive")
CREAM = ("CRM-KAR", "Crème mains karité – 75 ml")
CANDLE = ("BGI-LAV", "Bougie lavande")
NO_TRACKING = {"tracking_number": None, "carrier": None}

# prices as the customer saw them at checkout: the shop's prices include VAT
KINDS = {
    "card, paid": ("1001", {
        **LEA, "status": "paid", "payment_method": "Credit Card (Stripe)", "payment_class": "online",
        "created_at": at("2026-03-20T09:15:00"), "paid_at": at("2026-03-20T09:16:05"),
        "status_at": at("2026-03-20T09:16:05"), "shipped_at": None, "subtotal": "47.50",
        "tax": "8.73", "total": "52.40", "accepts_marketing": True, "locale": None, **NO_TRACKING,
        "lines": [Line(*SOAP, 2, "11.50"), Line(*CREAM, 1, "24.50")]}),
    "cash on delivery, processing": ("1002", {
        **HUGO, "status": "pending_payment", "payment_method": "Cash on delivery",
        "payment_class": "on_delivery", "created_at": at("2026-03-20T10:02:00"), "paid_at": None,
        "status_at": None, "shipped_at": None, "subtotal": "18.00", "tax": "3.82", "total": "22.90",
        "accepts_marketing": None, "locale": None, **NO_TRACKING,
        "lines": [Line(*CANDLE, 1, "18.00")]}),
    "bank transfer, on hold": ("1003", {
        **CHLOE, "status": "pending_payment", "payment_method": "Direct bank transfer",
        "payment_class": "offline", "created_at": at("2026-03-20T11:40:00"), "paid_at": None,
        "status_at": None, "shipped_at": None, "subtotal": "49.00", "tax": "8.99", "total": "53.90",
        "accepts_marketing": False, "locale": None, **NO_TRACKING,
        "lines": [Line(*CREAM, 2, "24.50")]}),
    "cheque, on hold": ("1004", {
        **NOAH, "status": "pending_payment", "payment_method": "Check payments",
        "payment_class": "offline", "created_at": at("2026-03-20T13:05:00"), "paid_at": None,
        "status_at": None, "shipped_at": None, "subtotal": "11.50", "tax": "2.74", "total": "16.40",
        "accepts_marketing": None, "locale": "en", **NO_TRACKING,
        "lines": [Line(*SOAP, 1, "11.50")]}),
    "cancelled": ("1005", {
        **HUGO, "status": "cancelled", "payment_method": "Direct bank transfer",
        "payment_class": "offline", "created_at": at("2026-03-19T08:00:00"), "paid_at": None,
        "status_at": None, "shipped_at": None, "subtotal": "36.00", "tax": "6.82", "total": "40.90",
        "accepts_marketing": None, "locale": None, **NO_TRACKING,
        "lines": [Line(*CANDLE, 2, "18.00")]}),
    "refunded": ("1006", {
        **LEA, "status": "refunded", "payment_method": "Credit Card (Stripe)",
        "payment_class": "online", "created_at": at("2026-03-18T16:20:00"),
        "paid_at": at("2026-03-18T16:21:00"), "status_at": None, "shipped_at": None,
        "subtotal": "24.50", "tax": "4.90", "total": "29.40", "accepts_marketing": None,
        "locale": None, **NO_TRACKING, "lines": [Line(*CREAM, 1, "24.50")]}),
    "completed with tracking": ("1007", {
        **CHLOE, "status": "shipped", "payment_method": "Credit Card (Stripe)",
        "payment_class": "online", "created_at": at("2026-03-17T10:00:00"),
        "paid_at": at("2026-03-17T10:01:00"), "status_at": at("2026-03-20T16:45:00"),
        "shipped_at": at("2026-03-20T16:45:00"), "subtotal": "29.50", "tax": "5.74",
        "total": "34.40", "accepts_marketing": None, "locale": None,
        "tracking_number": "6A12345678901", "carrier": "colissimo",
        "lines": [Line(*SOAP, 1, "11.50"), Line(*CANDLE, 1, "18.00")]}),
}


@pytest.fixture(scope="module")
def pulled() -> list[Batch]:
    with FakeWooCommerce() as fake:
        return pull(fake)


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_of_order_field_by_field(pulled, kind):
    number, expected = KINDS[kind]
    order = latest(pulled)[Order, number]
    assert {name: getattr(order, name) for name in {**COMMON, **expected}} == {**COMMON, **expected}
    assert order.platform_id == number


def test_a_pull_carries_tracking_only_from_an_order_with_the_tracking_plugins_meta(pulled):
    got = latest(pulled)
    tracking = {"tracking_number", "tracking_url", "carrier"}
    assert tracking <= got[Order, "1007"].carried
    assert not tracking & got[Order, "1001"].carried  # a tracking file's number stays
    assert not {"pickup_point", "delivered_at"} & got[Order, "1001"].carried


def test_a_checkout_draft_is_a_cart(pulled):
    assert latest(pulled)[Cart, "1008"] == Cart(
        cart_id="1008", line=1, email="noah.petit@example.com", created_at=at("2026-03-20T17:30:00"),
        updated_at=at("2026-03-20T17:42:00"), first_name="Noah", last_name="Petit",
        currency="EUR", total="59.00", lines=[Line(*CREAM, 1, "24.50"), Line(*SOAP, 3, "11.50")])


def test_an_order_the_adapter_rejects_is_a_rejected_record_naming_it():
    orders = fixture("orders.json")[:2]
    orders[1]["status"] = "wc-awaiting-courier"
    with FakeWooCommerce(orders=orders, customers=[]) as fake:
        batches = pull(fake)
    rejected = [r for r in records(batches) if isinstance(r, Rejected)]
    assert len(rejected) == 1
    assert rejected[0].reason.startswith("order 1002: unknown WooCommerce status 'wc-awaiting-courier'")
    assert order_ids(batches) == ["1001"]
