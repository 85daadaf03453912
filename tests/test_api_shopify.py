"""The Shopify GraphQL Admin API source, through `fetch()` with a real HttpClient over real HTTP to
the fake Admin API (tests/fakes/shopify_admin.py): pages, throttling, faults, and the mapping of
each kind of order compared with what the REST JSON adapter makes of the same order."""

from __future__ import annotations

import copy
import dataclasses
import json
from datetime import UTC, datetime, timedelta

import pytest
from fakes.shopify_admin import FIXTURES, TOKEN, VERSION, FakeShopifyAdmin, Fault

from mailflow.errors import ConfigError, SourceError, SourceRefused, SourceUnavailable
from mailflow.importing import shopify as rest
from mailflow.importing.api import shopify as api_shopify
from mailflow.importing.api.base import ApiSettings, Batch
from mailflow.importing.api.client import HttpClient
from mailflow.importing.api.shopify import ShopifyApi
from mailflow.records import UPDATABLE_FIELDS, Cart, Customer, Order, Rejected

SINCE = datetime(2026, 11, 1, tzinfo=UTC)
NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
ENV = {"SHOPIFY_TOKEN": TOKEN}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def settings(fake: FakeShopifyAdmin, **overrides: object) -> ApiSettings:
    fields: dict = {"name": "shopify", "platform": "shopify", "url": fake.url, "line": 12,
                    "api_version": VERSION, "token_env": "SHOPIFY_TOKEN", **overrides}
    return ApiSettings(**fields)


def pull(fake: FakeShopifyAdmin, waits: list[float] | None = None, **overrides: object) -> list[Batch]:
    source = ShopifyApi()
    chosen = settings(fake, **overrides)
    with source.open(chosen, ENV, sleep=(waits if waits is not None else []).append,
                     clock=lambda: NOW) as client:
        return list(source.fetch(client, chosen, SINCE, UTC))


def records(batches: list[Batch], what: str) -> list:
    return [r for b in batches if b.what == what for r in b.records]


def orders_by_name(batches: list[Batch]) -> dict[str, Order]:
    return {r.order_id: r for r in records(batches, "orders") if isinstance(r, Order)}


@pytest.fixture
def fake():
    with FakeShopifyAdmin() as server:
        yield server


# ------------------------------------------------------------------ pages


def test_several_pages_follow_the_cursor_in_update_order(fake):
    batches = pull(fake, page_size=3)
    assert [(b.what, len(b.records)) for b in batches] == [
        ("orders", 3), ("orders", 3), ("orders", 2), ("checkouts", 2), ("customers", 3)]
    assert list(orders_by_name(batches)) == [f"#{n}" for n in range(1001, 1009)]
    assert [b.newest for b in batches[:3]] == [at("2026-11-20T11:30:05Z"), at("2026-11-20T14:00:00Z"),
                                                at("2026-11-20T16:00:00Z")]
    asked = [r for r in fake.requests if r.root == "orders"]
    assert asked[0].variables["after"] is None
    assert all(later.variables["after"] for later in asked[1:])
    assert len({r.variables["after"] for r in asked}) == 3
    assert asked[0].variables["query"] == "updated_at:>='2026-11-01T00:00:00Z'"
    assert "sortKey: UPDATED_AT" in asked[0].query
    checkouts = next(r for r in fake.requests if r.root == "abandonedCheckouts")
    assert checkouts.variables["query"] == ("updated_at:>='2026-11-01T00:00:00Z'"
                                            " AND updated_at:<='2026-11-21T12:00:00Z'")
    customers = next(r for r in fake.requests if r.root == "customers")
    assert "sortKey: UPDATED_AT" in customers.query


def test_page_size_is_capped_so_a_query_stays_under_the_cost_limit(fake):
    pull(fake)  # ApiSettings.page_size is 100 by default
    first = {r.root: r.variables["first"] for r in fake.requests}
    assert first == {"orders": 8, "abandonedCheckouts": 10, "customers": 100}


def test_an_order_updated_between_pages_is_seen_again_and_none_is_missed(fake):
    def merchant_acts(server: FakeShopifyAdmin, root: str, page: int) -> None:
        if root == "orders" and page == 1:
            # #1002 was on page 1 (paid at the counter now); #1004 was still ahead of the cursor
            server.update("#1002", updatedAt="2026-11-21T10:00:00Z", displayFinancialStatus="PAID")
            server.update("#1004", updatedAt="2026-11-21T12:00:30Z")  # after the pull started

    fake.after_page = merchant_acts
    batches = pull(fake, page_size=3)
    seen = [r.order_id for r in records(batches, "orders")]
    assert sorted(set(seen)) == [f"#{n}" for n in range(1001, 1009)]
    assert seen.count("#1002") == 2
    last_1002 = [r for r in records(batches, "orders") if r.order_id == "#1002"][-1]
    assert (last_1002.status, last_1002.changed_at) == ("paid", at("2026-11-21T10:00:00Z"))
    assert [r.changed_at for r in records(batches, "orders") if r.order_id == "#1004"] == [
        at("2026-11-21T12:00:30Z")]
    # the source's watermark never passes the pull's start: what changed during it comes again
    assert [b.newest for b in batches if b.what == "orders"][-1] == NOW


def test_a_long_pull_restarts_its_connection_from_the_newest_update_seen(fake, monkeypatch):
    monkeypatch.setattr(api_shopify, "REANCHOR", 3)
    batches = pull(fake, page_size=3)
    seen = [r.order_id for r in records(batches, "orders")]
    assert sorted(set(seen)) == [f"#{n}" for n in range(1001, 1009)]
    asked = [r.variables for r in fake.requests if r.root == "orders"]
    assert all(v["after"] is None for v in asked)
    assert [v["query"] for v in asked] == [
        "updated_at:>='2026-11-01T00:00:00Z'", "updated_at:>='2026-11-20T11:30:05Z'",
        "updated_at:>='2026-11-20T13:00:00Z'", "updated_at:>='2026-11-20T15:00:00Z'"]


def test_checkouts_changed_after_the_pull_started_wait_for_the_next_pull(fake):
    later = copy.deepcopy(fake.checkouts[0])
    later.update(id="gid://shopify/AbandonedCheckout/33001100003", updatedAt="2026-11-21T12:00:01Z")
    fake.checkouts.append(later)
    carts = records(pull(fake), "checkouts")
    assert [c.cart_id for c in carts] == ["33001100001", "33001100002"]


def test_lines_beyond_the_first_page_are_asked_for(fake):
    node = next(o for o in fake.orders if o["name"] == "#1001")
    node["lineItems"]["nodes"] = [
        {"sku": f"SKU-{n}", "name": f"Article {n}", "quantity": 1,
         "originalUnitPriceSet": {"shopMoney": {"amount": "1.00"}}} for n in range(1, 146)]
    order = orders_by_name(pull(fake))["#1001"]
    assert [line.sku for line in order.lines] == [f"SKU-{n}" for n in range(1, 146)]
    follow_ups = [r.variables for r in fake.requests if r.root == "node"]
    assert [v["id"] for v in follow_ups] == ["gid://shopify/Order/5501000001"] * 2
    assert follow_ups[0]["after"] and follow_ups[1]["after"] != follow_ups[0]["after"]


# ------------------------------------------------------------------ throttling


def test_throttled_answers_are_waited_out_and_asked_again(fake):
    fake.faults = [Fault("throttled", available=45.0), Fault("throttled", available=45.0)]
    waits: list[float] = []
    batches = pull(fake, waits)
    # (requested 2 + 8 × 99 points − 45 available) / 100 points a second
    assert waits == pytest.approx([7.49, 7.49])
    assert len(orders_by_name(batches)) == 8
    assert len(records(batches, "customers")) == 3


def test_a_query_waits_until_the_bucket_holds_its_cost(fake):
    fake.available = 300.0  # every answer says the bucket holds 300 points
    waits: list[float] = []
    batches = pull(fake, waits, page_size=4)
    # the second page of orders costs 2 + 4 × 99 = 398: (398 − 300) / 100 s; the rest fit
    assert waits == pytest.approx([0.98])
    assert len(orders_by_name(batches)) == 8


def test_throttling_that_does_not_end_stops_the_source_for_this_run(fake):
    fake.faults = [Fault("throttled", available=0.0)] * 20
    waits: list[float] = []
    with pytest.raises(SourceUnavailable) as caught:
        pull(fake, waits)
    assert waits == pytest.approx([7.94] * api_shopify.THROTTLE_TRIES)
    message = str(caught.value)
    assert "\n" not in message and "throttling" in message and "nothing was skipped" in message


def test_http_429_with_retry_after_is_honoured(fake):
    fake.faults = [Fault("429", seconds=3)]
    waits: list[float] = []
    batches = pull(fake, waits)
    assert waits == [3.0]
    assert len(orders_by_name(batches)) == 8


def test_a_query_over_the_cost_limit_asks_for_fewer_nodes(fake):
    fake.faults = [Fault("json", body={"errors": [{
        "message": "Query cost is 1586, which exceeds the single query max cost limit (1000).",
        "extensions": {"code": "MAX_COST_EXCEEDED", "cost": 1586, "maxCost": 1000}}]})]
    batches = pull(fake)
    assert [r.variables["first"] for r in fake.requests if r.root == "orders"][:2] == [8, 4]
    assert len(orders_by_name(batches)) == 8


# ------------------------------------------------------------------ faults


def test_a_refused_token_is_one_line_without_the_token(fake):
    fake.token = "shpat_another"
    with pytest.raises(SourceRefused) as caught:
        pull(fake)
    message = str(caught.value)
    assert "HTTP 401" in message and "\n" not in message
    assert TOKEN not in message and "X-Shopify-Access-Token" not in message


def test_a_server_error_then_success(fake):
    fake.faults = [Fault("status", status=500)]
    waits: list[float] = []
    batches = pull(fake, waits)
    assert waits == [1.0]
    assert len(orders_by_name(batches)) == 8


def test_no_answer_within_the_timeout_is_unavailable_after_the_retries(fake):
    fake.faults = [Fault("hang", seconds=1.6)] * 3
    waits: list[float] = []
    chosen = settings(fake)
    client = HttpClient("shopify", fake.url, headers={"X-Shopify-Access-Token": TOKEN},
                        timeout=timedelta(seconds=1), sleep=waits.append, clock=lambda: NOW, attempts=3)
    with client, pytest.raises(SourceUnavailable) as caught:
        list(ShopifyApi().fetch(client, chosen, SINCE, UTC))
    assert "no answer within 1s" in str(caught.value) and "after 3 attempts" in str(caught.value)
    assert waits == [1.0, 2.0]


def test_malformed_json_is_a_source_error(fake):
    fake.faults = [Fault("malformed")]
    with pytest.raises(SourceError) as caught:
        pull(fake)
    assert type(caught.value) is SourceError
    assert "not JSON" in str(caught.value) and "\n" not in str(caught.value)


def test_access_denied_names_the_missing_scope(fake):
    def deny_checkouts(server: FakeShopifyAdmin, root: str, page: int) -> None:
        if root == "orders":
            server.faults.append(Fault("access_denied"))

    fake.after_page = deny_checkouts
    with pytest.raises(SourceRefused) as caught:
        pull(fake)
    message = str(caught.value)
    assert "read_orders" in message and "abandonedCheckouts" in message and "\n" not in message


def test_another_graphql_error_stops_the_source_with_its_message(fake):
    fake.faults = [Fault("json", body={"errors": [{
        "message": "Field 'displayStatus' doesn't exist on type 'Fulfillment'",
        "locations": [{"line": 14, "column": 37}], "path": ["query MailflowOrders"],
        "extensions": {"code": "undefinedField", "typeName": "Fulfillment", "fieldName": "displayStatus"}}]})]
    with pytest.raises(SourceError) as caught:
        pull(fake)
    assert type(caught.value) is SourceError
    assert "Field 'displayStatus' doesn't exist on type 'Fulfillment'" in str(caught.value)


def test_more_pages_without_a_new_cursor_stop_the_source_rather_than_loop(fake):
    page = {"nodes": [], "pageInfo": {"hasNextPage": True, "endCursor": None}}
    fake.faults = [Fault("json", body={"data": {"orders": page}})]
    with pytest.raises(SourceError) as caught:
        pull(fake)
    assert "said more orders follow but gave no new cursor" in str(caught.value)


def test_the_wrong_api_version_is_a_source_error(fake):
    fake.version = "2026-01"
    with pytest.raises(SourceError) as caught:
        pull(fake)
    assert "HTTP 404" in str(caught.value) and "api version" in str(caught.value)


# ------------------------------------------------------------------ open


@pytest.mark.parametrize(("version", "said"), [
    (None, "rules.yaml:12: source shopify: set api_version"),
    ("2025-13", "rules.yaml:12: source shopify: api_version '2025-13' is not a Shopify API version")])
def test_the_api_version_must_be_pinned(fake, version, said):
    with pytest.raises(ConfigError) as caught:
        ShopifyApi().open(settings(fake, api_version=version), ENV, sleep=lambda s: None,
                          clock=lambda: NOW)
    assert str(caught.value).startswith(said)


def test_the_token_comes_from_the_environment(fake):
    with pytest.raises(ConfigError) as caught:
        ShopifyApi().open(settings(fake), {}, sleep=lambda s: None, clock=lambda: NOW)
    assert "SHOPIFY_TOKEN" in str(caught.value) and "Admin API access token" in str(caught.value)


# ------------------------------------------------------------------ mapping

REST_ORDERS = {o["name"]: o for o in json.loads((FIXTURES / "rest_orders.json").read_text())["orders"]}
EXPECTED = {  # order: (status, payment class, consent)
    "#1001": ("paid", "online", True),  # card, paid
    "#1002": ("pending_payment", "on_delivery", False),  # Cash on Delivery (COD), pending
    "#1003": ("pending_payment", "offline", False),  # Bank Deposit, pending; consent PENDING
    "#1004": ("cancelled", "online", False),  # voided and cancelled
    "#1005": ("refunded", "online", True),
    "#1006": ("shipped", "online", True),  # partially fulfilled; a cancelled parcel ignored
    "#1007": ("delivered", "online", True),  # every parcel DELIVERED
    "#1008": ("at_pickup_point", "online", True),  # READY_FOR_PICKUP
}


@pytest.fixture(scope="module")
def pulled():
    with FakeShopifyAdmin() as server:
        return pull(server)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_each_kind_of_order_maps_as_the_rest_adapter_maps_it(pulled, name):
    order = orders_by_name(pulled)[name]
    from_rest = rest._json_order(REST_ORDERS[name], order.line, UTC)
    status, payment_class, consent = EXPECTED[name]
    assert (order.status, order.payment_class, order.accepts_marketing) == (status, payment_class, consent)
    mine, theirs = dataclasses.asdict(order), dataclasses.asdict(from_rest)
    if name == "#1007":  # GraphQL says when each parcel arrived; REST only when it last changed
        assert (order.delivered_at, order.status_at) == (at("2026-11-18T10:05:00Z"),) * 2
        assert from_rest.delivered_at == at("2026-11-20T15:00:00Z")
        for field in ("delivered_at", "status_at"):
            mine.pop(field), theirs.pop(field)
    assert mine == theirs


def test_the_orders_details(pulled):
    orders = orders_by_name(pulled)
    first = orders["#1001"]
    assert (first.platform_id, first.email, first.first_name, first.last_name, first.locale) == (
        "5501000001", "camille.martin@example.com", "Camille", "Martin", "fr")
    assert (first.currency, first.subtotal, first.shipping, first.tax, first.discount, first.total) == (
        "EUR", "37.90", "4.90", "7.13", "0.00", "42.80")
    assert first.payment_method == "shopify_payments" and first.shipping_method == "Colissimo"
    assert first.shipping_address == "Camille Martin\n12 rue des Lilas\n69003 Lyon\nFrance"
    assert [(li.sku, li.name, li.quantity, li.price) for li in first.lines] == [
        ("MUG-BLEU", "Mug émaillé - Bleu", 2, "14.50"), ("TH-EARL", "Thé Earl Grey 100 g", 1, "8.90")]
    assert orders["#1002"].payment_method == "Cash on Delivery (COD)"
    partial = orders["#1006"]
    assert (partial.tracking_number, partial.carrier, partial.shipped_at) == (
        "6C98765432101", "Colissimo", at("2026-11-19T16:30:00Z"))
    assert orders["#1004"].cancelled_at == at("2026-11-20T11:59:58Z")
    pickup = orders["#1008"]
    assert (pickup.status_at, pickup.tracking_url) == (
        at("2026-11-20T16:00:00Z"), "https://www.mondialrelay.fr/suivi-de-colis/?NumeroExpedition=MR0000123456")


def test_a_pull_carries_every_field_its_query_gives_and_no_other(pulled):
    orders = orders_by_name(pulled)
    never = {"paid_at", "pickup_point"}
    assert orders["#1007"].carried == frozenset(UPDATABLE_FIELDS) - never
    assert orders["#1001"].carried == frozenset(UPDATABLE_FIELDS) - never - {"delivered_at"}
    assert {"tracking_number", "tracking_url", "carrier", "shipped_at", "lines"} <= orders["#1001"].carried


def test_checkouts_become_carts_with_their_recovery_url(pulled):
    carts = {c.cart_id: c for c in records(pulled, "checkouts")}
    open_cart, recovered = carts["33001100001"], carts["33001100002"]
    assert isinstance(open_cart, Cart)
    assert open_cart.recovery_url == ("https://boutique.example/12345/checkouts/ac/Z2NwLWV1cm9wZTE/recover"
                                      "?key=3f1c2a9e")
    assert (open_cart.email, open_cart.first_name, open_cart.locale, open_cart.accepts_marketing) == (
        "jules.faure@example.com", "Jules", "fr", True)
    assert (open_cart.currency, open_cart.total, open_cart.completed_at) == ("EUR", "33.90", None)
    assert [(li.sku, li.name, li.quantity, li.price) for li in open_cart.lines] == [
        ("MUG-BLEU", "Mug émaillé", 2, "14.50")]
    assert open_cart.updated_at == at("2026-11-20T08:20:00Z")
    assert (recovered.completed_at, recovered.accepts_marketing, recovered.locale) == (
        at("2026-11-20T09:00:00Z"), False, "en")
    assert [b.newest for b in pulled if b.what == "checkouts"] == [at("2026-11-20T09:00:00Z")]


def test_customers_with_their_email_marketing_consent(pulled):
    customers = {c.email: c for c in records(pulled, "customers")}
    assert all(isinstance(c, Customer) for c in customers.values())
    assert {e: c.accepts_marketing for e, c in customers.items()} == {
        "camille.martin@example.com": True, "hugo.bernard@example.com": False,
        "lea.petit@example.com": False}  # PENDING: a double opt-in not confirmed is no yes
    camille = customers["camille.martin@example.com"]
    assert (camille.first_name, camille.last_name, camille.locale, camille.created_at) == (
        "Camille", "Martin", "fr", at("2025-03-02T10:00:00Z"))


def test_an_order_that_cannot_be_read_is_rejected_and_the_rest_imports(fake):
    fake.orders[0]["displayFinancialStatus"] = None
    fake.orders[1]["displayFinancialStatus"] = "CHARGEBACK"
    found = records(pull(fake), "orders")
    rejected = [r for r in found if isinstance(r, Rejected)]
    assert [r.reason for r in rejected] == ["order #1001: financial_status is empty",
                                            "order #1002: unknown financial status 'CHARGEBACK'"]
    assert len(found) == 8


def test_a_pulled_refund_gives_the_amount_given_back_and_when(pulled):
    refunded = orders_by_name(pulled)["#1005"]
    assert (refunded.refunded_amount, refunded.refunded_at) == ("63.90", at("2026-11-20T12:59:00Z"))
    assert orders_by_name(pulled)["#1001"].refunded_amount is None
