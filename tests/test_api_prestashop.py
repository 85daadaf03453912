"""PrestaShop's Webservice as a live source: `fetch()` with a real HttpClient, over real HTTP,
to the fake of tests/fakes/prestashop_api.py (documented payload shapes in
tests/fixtures/api/prestashop/). `sleep` records the waits and the clock is fixed: nothing
sleeps but the timeout test, whose client gives up after 1 s."""

from __future__ import annotations

import dataclasses
import json
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml
from fakes.prestashop_api import FIXTURES, KEY, RESOURCES, FakePrestaShop, fixture

from mailflow.errors import ConfigError, SourceError, SourceRefused, SourceUnavailable
from mailflow.importing import prestashop_states
from mailflow.importing.api.base import ApiSettings, Batch
from mailflow.importing.api.client import HttpClient
from mailflow.importing.api.prestashop import PrestaShopApi, error_detail
from mailflow.records import Cart, Customer, Line, Order, Rejected

ROOT = Path(__file__).parent.parent
PARIS = ZoneInfo("Europe/Paris")
SINCE = datetime(2026, 3, 1, tzinfo=UTC)
NOW = datetime(2026, 3, 22, 12, 0, tzinfo=UTC)
ENV = {"PS_KEY": KEY}


def paris(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=PARIS).astimezone(UTC)


def settings(fake: FakePrestaShop, **options: object) -> ApiSettings:
    values: dict = {"name": "boutique", "platform": "prestashop", "url": fake.url,
                    "key_env": "PS_KEY", "page_size": 3, **options}
    return ApiSettings(**values)


def pull(fake: FakePrestaShop, *, since: datetime = SINCE, sleeps: list[float] | None = None,
         client: HttpClient | None = None, **options: object) -> list[Batch]:
    platform = PrestaShopApi()
    source = settings(fake, **options)
    waits = [] if sleeps is None else sleeps
    opened = client or platform.open(source, ENV, sleep=waits.append, clock=lambda: NOW)
    with opened:
        return list(platform.fetch(opened, source, since, PARIS))


def records(batches: list[Batch], what: str | None = None) -> list:
    return [r for b in batches if what in (None, b.what) for r in b.records]


def latest(batches: list[Batch]) -> dict[tuple[type, str], Order | Cart]:
    seen: dict[tuple[type, str], Order | Cart] = {}
    for record in records(batches):
        if isinstance(record, Order):
            seen[Order, record.order_id] = dataclasses.replace(record, line=0)
        elif isinstance(record, Cart):
            seen[Cart, record.cart_id] = dataclasses.replace(record, line=0)
    return seen


def assert_nothing_missed(batches: list[Batch], fake: FakePrestaShop,
                          since: datetime = SINCE) -> None:
    """Each order and cart of the fake's final state, at the version a quiet pull reads now."""
    with FakePrestaShop(**fake.data) as quiet:
        final = latest(pull(quiet, since=since))
    got = latest(batches)
    for key, record in final.items():
        assert key in got, f"{key} was missed"
        assert got[key] == record, f"{key} is stale"


def listing(fake: FakePrestaShop, resource: str = "orders") -> list[dict[str, str]]:
    return [r.params for r in fake.requests
            if r.path == f"/api/{resource}" and r.params.get("display") == "full"
            and "filter[date_upd]" in r.params]


# --- the fixtures and the state table -------------------------------------------------------

def test_fixtures_have_exactly_the_documented_fields():
    schemas = json.loads((FIXTURES / "schemas.json").read_text())
    for resource in RESOURCES:
        for entry in fixture(resource)[resource]:
            if resource == "products":  # abridged to what mailflow asks for
                assert set(entry) <= set(schemas[resource]["fields"])
                continue
            assert list(entry) == schemas[resource]["fields"], resource
            for association, rows in entry.get("associations", {}).items():
                for row in rows:
                    assert list(row) == schemas[resource][association], association
    assert (FIXTURES / "SOURCES.md").is_file()


def test_the_example_mapping_and_the_docs_list_the_states_of_prestashop_states_py():
    mapping = yaml.safe_load((ROOT / "examples" / "prestashop" / "mapping.yaml").read_text())
    assert mapping["statuses"] == prestashop_states.STATES
    docs = (ROOT / "docs" / "formats" / "mapping.md").read_text()
    table = docs[docs.index("The mapping's `statuses:` covers"):]
    table = table[:table.index("\n\n", table.index("|"))]
    rows = re.findall(r"^\| ([^|`]+?) \| `(\w+)` \|", table, re.M)
    assert dict(rows) == prestashop_states.FRENCH


def test_every_standard_state_of_the_fixture_has_a_status_in_both_languages():
    for state in fixture("order_states")["order_states"][:13]:
        english, french = (n["value"] for n in state["name"])
        assert prestashop_states.status_of(english) == prestashop_states.status_of(french)
        assert prestashop_states.status_of(english) is not None
    assert prestashop_states.status_of("  paiement ACCEPTE ") == "paid"


# --- paging -----------------------------------------------------------------------------------

def test_pages_orders_then_carts_then_customers_with_the_documented_query():
    with FakePrestaShop() as fake:
        batches = pull(fake)
        pages = listing(fake)
        assert [p["limit"] for p in pages] == ["0,3", "3,3", "6,3", "0,3"]  # then a catch-up
        assert pages[0] == {"output_format": "JSON", "display": "full", "date": "1",
                            "filter[date_upd]": "[2026-03-01 01:00:00,2026-03-23 13:00:00]",
                            "sort": "[id_ASC]", "limit": "0,3"}
        # the catch-up asks from the first round's start (the fake's Date), in shop time
        assert pages[3]["filter[date_upd]"] == "[2026-03-22 12:59:01,2026-03-23 13:00:00]"
        # names, consent, states, currencies, languages: a few bounded lookups, once each
        lookups = [(r.path, r.params.get("filter[id]") or r.params.get("filter[id_cart]"))
                   for r in fake.requests if "filter[date_upd]" not in r.params]
        assert lookups == [
            ("/api/customers", "[11|12|13]"), ("/api/languages", None), ("/api/currencies", None),
            ("/api/order_states", None), ("/api/customers", "[14]"),
            ("/api/products", "[1|2]"), ("/api/orders", "[201|209]")]
        assert_nothing_missed(batches, fake)
    assert [(b.what, len(b.records)) for b in batches] == [
        ("orders", 3), ("orders", 3), ("orders", 2), ("checkouts", 2), ("customers", 3),
        ("customers", 1)]
    assert batches[0].newest == paris("2026-03-20 12:40:30")


def test_nothing_changed_since_is_no_batch_and_an_empty_list_is_read():
    with FakePrestaShop() as fake:
        assert pull(fake, since=NOW) == []
        assert {r.path for r in fake.requests} == {"/api/orders", "/api/carts", "/api/customers"}


def test_an_order_modified_between_two_pages_is_yielded_at_its_final_version():
    with FakePrestaShop() as fake:
        fake.before(lambda r: r.params.get("limit") == "3,3" and r.path == "/api/orders",
                    lambda: fake.modify("orders", 102, current_state="2"))
        batches = pull(fake)
        assert latest(batches)[Order, "102"].status == "paid"
        assert_nothing_missed(batches, fake)


def test_an_order_created_between_two_pages_is_not_missed():
    with FakePrestaShop() as fake:
        fake.before(lambda r: r.params.get("limit") == "3,3" and r.path == "/api/orders",
                    lambda: fake.create("orders", like=101, new_id=109, id_cart="211"))
        batches = pull(fake)
        assert_nothing_missed(batches, fake)
    assert (Order, "109") in latest(batches)


def test_an_order_deleted_between_two_pages_shifts_none_out_of_them():
    with FakePrestaShop() as fake:
        # 104 slides from page 2 onto page 1, already read: the ids list shows it was missed
        fake.before(lambda r: r.params.get("limit") == "3,3" and r.path == "/api/orders",
                    lambda: fake.delete("orders", 101))
        batches = pull(fake)
        assert_nothing_missed(batches, fake)
        fetched = [r.params["filter[id]"] for r in fake.requests
                   if r.path == "/api/orders" and "filter[id]" in r.params]
    assert fetched == ["[104]"]


def test_an_old_order_modified_between_pages_joins_without_pushing_another_out():
    since = paris("2026-03-20 15:30:00")  # 104, 105, 107, 108 changed since; 101-103, 106 not
    with FakePrestaShop() as fake:
        fake.before(lambda r: r.params.get("limit") == "3,3" and r.path == "/api/orders",
                    lambda: fake.modify("orders", 101, current_state="4",
                                        shipping_number="6A00000000001"))
        batches = pull(fake, since=since)
        assert_nothing_missed(batches, fake, since)
    assert latest(batches)[Order, "101"].status == "shipped"


# --- faults -----------------------------------------------------------------------------------

def test_429_waits_as_long_as_retry_after_says():
    sleeps: list[float] = []
    with FakePrestaShop() as fake:
        fake.fail("429", path="/api/orders", retry_after="12")
        batches = pull(fake, sleeps=sleeps)
        assert_nothing_missed(batches, fake)
    assert sleeps == [12.0]


def test_401_is_refused_in_a_line_naming_no_credential():
    for env in ({"PS_KEY": "WRONGKEY0000000000000000000000XX"}, ENV):
        with FakePrestaShop() as fake:
            if env is ENV:
                fake.fail("401")
            platform, source = PrestaShopApi(), settings(fake)
            with platform.open(source, env, sleep=lambda s: None, clock=lambda: NOW) as client, \
                    pytest.raises(SourceRefused) as refused:
                list(platform.fetch(client, source, SINCE, PARIS))
            assert fake.requests[0].password == ""  # the key is the user, the password empty
        line = str(refused.value)
        assert "\n" not in line and "HTTP 401" in line and "/api/orders" in line
        for secret in (KEY, "WRONGKEY", "PS_KEY"):
            assert secret not in line


def test_500_then_success():
    sleeps: list[float] = []
    with FakePrestaShop() as fake:
        fake.fail("500", path="/api/carts")
        batches = pull(fake, sleeps=sleeps)
        assert_nothing_missed(batches, fake)
    assert sleeps == [1.0]


def test_a_server_that_does_not_answer_in_time_is_unavailable():
    with FakePrestaShop() as fake:
        fake.fail("hang", seconds=5)
        fake.fail("hang", seconds=5)
        client = HttpClient("boutique", fake.url, auth=(KEY, ""), timeout=timedelta(seconds=1),
                            sleep=lambda s: None, clock=lambda: NOW, attempts=2)
        started = time.monotonic()
        with pytest.raises(SourceUnavailable, match=r"no answer within 1s.*after 2 attempts"):
            pull(fake, client=client)
        assert time.monotonic() - started < 4


def test_malformed_json_is_a_source_error():
    with FakePrestaShop() as fake:
        fake.fail("malformed", path="/api/orders")
        with pytest.raises(SourceError, match="not JSON") as error:
            pull(fake)
    assert not isinstance(error.value, SourceUnavailable)


def test_an_error_document_is_said_in_one_line():
    with FakePrestaShop() as fake, pytest.raises(SourceError) as error:
        pull(fake, url=fake.url + "/boutique")
    assert str(error.value) == (
        f"boutique: {fake.url}/boutique/api/orders answered HTTP 404: PrestaShop says: [22]"
        ' Resource of type "/boutique/api/orders" does not exist')
    documented = json.dumps(fixture("errors")["documented"]).encode()
    assert error_detail(documented) == ("PrestaShop says: [100] You have to set both the"
                                        " 'language' and 'query' parameters to get a result")
    assert error_detail(b"[]") is None


def test_credentials_come_from_the_environment():
    with FakePrestaShop() as fake, pytest.raises(ConfigError, match="PS_KEY"):
        PrestaShopApi().open(settings(fake), {}, sleep=lambda s: None, clock=lambda: NOW)


# --- what each kind of order becomes -----------------------------------------------------------

COMMON = {"currency": "EUR", "discount": "0.00", "shipping": "4.90", "paid_at": None,
          "shipped_at": None, "delivered_at": None, "cancelled_at": None, "status_at": None,
          "shipping_method": None, "shipping_address": None, "carrier": None,
          "tracking_url": None, "pickup_point": None}
LEA = {"email": "lea.dubois@example.fr", "first_name": "Léa", "last_name": "Dubois",
       "accepts_marketing": True, "locale": "fr"}
HUGO = {"email": "hugo.martin@example.fr", "first_name": "Hugo", "last_name": "Martin",
        "accepts_marketing": False, "locale": "fr"}
CHLOE = {"email": "chloe.bernard@example.fr", "first_name": "Chloé", "last_name": "Bernard",
         "accepts_marketing": False, "locale": "fr"}  # `optin` (partners' offers) is not consent
NOAH = {"email": "noah.petit@example.com", "first_name": "Noah", "last_name": "Petit",
        "accepts_marketing": True, "locale": "en"}
SOAP = ("SAV-OLV", "Savon à l'huile d'olive")
CREAM = ("CRM-KAR", "Crème mains karité")
CANDLE = ("BGI-LAV", "Bougie lavande")

KINDS = {
    "Paiement accepté, card": ("101", {
        **LEA, "status": "paid", "payment_method": "Carte bancaire", "payment_class": "online",
        "created_at": paris("2026-03-20 10:15:00"), "subtotal": "47.50", "tax": "8.73",
        "total": "52.40", "tracking_number": None,
        "lines": [Line(*SOAP, 2, "11.50"), Line(*CREAM, 1, "24.50")]}),
    "En attente de virement bancaire": ("102", {
        **HUGO, "status": "pending_payment", "payment_method": "Virement bancaire",
        "payment_class": "offline", "created_at": paris("2026-03-20 11:02:00"),
        "subtotal": "18.00", "tax": "3.82", "total": "22.90", "tracking_number": None,
        "lines": [Line(*CANDLE, 1, "18.00")]}),
    "En attente de paiement à la livraison": ("103", {
        **CHLOE, "status": "in_preparation", "payment_method": "Paiement à la livraison",
        "payment_class": "on_delivery", "created_at": paris("2026-03-20 12:40:00"),
        "subtotal": "49.00", "tax": "8.98", "total": "53.90", "tracking_number": None,
        "lines": [Line(*CREAM, 2, "24.50")]}),
    "Expédié, with its tracking number": ("104", {
        **LEA, "status": "shipped", "payment_method": "Carte bancaire", "payment_class": "online",
        "created_at": paris("2026-03-17 11:00:00"), "subtotal": "29.50", "tax": "5.73",
        "total": "34.40", "tracking_number": "6A98765432101",
        "lines": [Line(*SOAP, 1, "11.50"), Line(*CANDLE, 1, "18.00")]}),
    "Livré, an English order": ("105", {
        **NOAH, "status": "delivered", "payment_method": "Payments by check",
        "payment_class": "offline", "created_at": paris("2026-03-10 09:00:00"),
        "subtotal": "11.50", "tax": "2.73", "total": "16.40", "tracking_number": None,
        "lines": [Line("SAV-OLV", "Olive oil soap", 1, "11.50")]}),
    "Annulé": ("106", {
        **HUGO, "status": "cancelled", "payment_method": "Virement bancaire",
        "payment_class": "offline", "created_at": paris("2026-03-12 08:00:00"),
        "subtotal": "36.00", "tax": "6.82", "total": "40.90", "tracking_number": None,
        "lines": [Line(*CANDLE, 2, "18.00")]}),
    "Remboursé": ("107", {
        **CHLOE, "status": "refunded", "payment_method": "Carte bancaire",
        "payment_class": "online", "created_at": paris("2026-03-15 16:20:00"),
        "subtotal": "24.50", "tax": "4.90", "total": "29.40", "tracking_number": None,
        "lines": [Line(*CREAM, 1, "24.50")]}),
    "En attente du paiement par chèque": ("108", {
        **HUGO, "status": "pending_payment", "payment_method": "Chèque",
        "payment_class": "offline", "created_at": paris("2026-03-20 19:05:00"),
        "subtotal": "34.50", "tax": "6.57", "total": "39.40", "tracking_number": None,
        "lines": [Line(*SOAP, 3, "11.50")]}),
}


@pytest.fixture(scope="module")
def pulled() -> list[Batch]:
    with FakePrestaShop() as fake:
        return pull(fake)


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_of_order_field_by_field(pulled, kind):
    number, expected = KINDS[kind]
    order = latest(pulled)[Order, number]
    assert {name: getattr(order, name) for name in {**COMMON, **expected}} == {**COMMON, **expected}
    assert order.platform_id == number


def test_a_pull_carries_exactly_what_the_webservice_gives(pulled):
    got = latest(pulled)
    given = {"status", "created_at", "subtotal", "shipping", "tax", "discount", "total",
             "payment_method", "payment_class", "platform_id", "lines", "email", "first_name",
             "last_name", "accepts_marketing", "locale", "currency"}
    assert got[Order, "101"].carried == given  # no tracking number: a tracking file's stays
    assert got[Order, "104"].carried == given | {"tracking_number"}


def test_an_order_whose_customer_is_gone_carries_no_address():
    with FakePrestaShop(customers=[]) as fake:
        order = latest(pull(fake))[Order, "101"]
    assert order.email is None and order.accepts_marketing is None
    assert not {"email", "first_name", "last_name", "accepts_marketing"} & order.carried


def test_a_one_language_shop_gives_names_as_strings():
    states = fixture("order_states")["order_states"]
    for state in states:
        state["name"], state["template"] = state["name"][0]["value"], state["template"][0]["value"]
    with FakePrestaShop(order_states=states) as fake:
        got = latest(pull(fake))
    assert [got[Order, n].status for n in ("101", "102", "103", "105")] == [
        "paid", "pending_payment", "in_preparation", "delivered"]


def test_a_modules_state_rejects_that_order_naming_the_state():
    orders = fixture("orders")["orders"][:2]
    orders[1]["current_state"] = "14"
    with FakePrestaShop(orders=orders) as fake:
        batches = pull(fake)
    rejected = [r for r in records(batches, "orders") if isinstance(r, Rejected)]
    assert [r.reason.split(":")[0] for r in rejected] == ["order 102"]
    assert "'Delivered to the pickup point'" in rejected[0].reason
    assert [r.order_id for r in records(batches, "orders") if isinstance(r, Order)] == ["101"]


def test_carts_of_customers_with_product_names_in_their_language_and_the_order_they_became(pulled):
    got = latest(pulled)
    assert got[Cart, "201"] == Cart(
        cart_id="201", line=0, email="lea.dubois@example.fr",
        created_at=paris("2026-03-20 10:05:00"), updated_at=paris("2026-03-20 10:15:00"),
        completed_at=paris("2026-03-20 10:15:00"), order_id="101", first_name="Léa",
        last_name="Dubois", locale="fr", accepts_marketing=True, currency="EUR",
        lines=[Line(*SOAP, 2, None), Line(*CREAM, 1, None)])
    assert got[Cart, "209"] == Cart(
        cart_id="209", line=0, email="noah.petit@example.com",
        created_at=paris("2026-03-20 18:30:00"), updated_at=paris("2026-03-20 18:42:00"),
        first_name="Noah", last_name="Petit", locale="en", accepts_marketing=True,
        currency="EUR", lines=[Line("CRM-KAR", "Shea hand cream", 1, None),
                               Line("SAV-OLV", "Olive oil soap", 3, None)])
    assert (Cart, "210") not in got  # a visitor's cart: nobody to remind


def test_customers_with_consent_and_a_guest_has_no_account_date(pulled):
    assert records(pulled, "customers") == [
        Customer("lea.dubois@example.fr", 1, "Léa", "Dubois", "fr", True,
                 paris("2026-03-20 10:10:00")),
        Customer("hugo.martin@example.fr", 2, "Hugo", "Martin", "fr", False,
                 paris("2025-11-02 18:30:00")),
        Customer("chloe.bernard@example.fr", 3, "Chloé", "Bernard", "fr", False, None),
        Customer("noah.petit@example.com", 4, "Noah", "Petit", "en", True,
                 paris("2026-03-19 19:00:00"))]


def test_a_deleted_customer_is_left_out():
    people = fixture("customers")["customers"]
    people[0]["deleted"] = "1"
    with FakePrestaShop(customers=people) as fake:
        emails = [c.email for c in records(pull(fake), "customers")]
    assert "lea.dubois@example.fr" not in emails and len(emails) == 3
