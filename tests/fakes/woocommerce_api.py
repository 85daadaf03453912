"""A fake WooCommerce REST API `wc/v3`: `/wp-json/wc/v3/orders` and `/customers`, as the
documentation describes them (tests/fixtures/api/woocommerce/SOURCES.md): HTTP Basic with
the consumer key and secret, the documented query parameters (anything else is the
`rest_invalid_param` error WordPress answers), pages with `X-WP-Total`, `X-WP-TotalPages`
and `Link`, and entries in the documented shapes (tests/fixtures/api/woocommerce/*.json)."""

from __future__ import annotations

import copy
import json
import math
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fakes.server import Answer, FakeShop, Request, json_answer

FIXTURES = Path(__file__).parent.parent / "fixtures" / "api" / "woocommerce"
KEY = "ck_3f9d2c1b0a99887766554433221100ffeeddccbb"
SECRET = "cs_0a1b2c3d4e5f60718293a4b5c6d7e8f901234567"
BASE = "/wp-json/wc/v3"
SITE_OFFSET = timedelta(hours=1)  # the site's wall clock (Europe/Paris in March) against GMT

ORDER_PARAMS = {"context", "page", "per_page", "search", "after", "before", "modified_after",
                "modified_before", "dates_are_gmt", "exclude", "include", "offset", "order",
                "orderby", "parent", "parent_exclude", "status", "customer", "product", "dp"}
ORDER_ORDERBY = ("date", "id", "include", "title", "slug")
# the documented options, and checkout-draft, which the block checkout registers
STATUSES = ("any", "pending", "processing", "on-hold", "completed", "cancelled", "refunded",
            "failed", "trash", "checkout-draft")
CUSTOMER_PARAMS = {"context", "page", "per_page", "search", "exclude", "include", "offset",
                   "order", "orderby", "email", "role"}
CUSTOMER_ORDERBY = ("id", "include", "name", "registered_date")


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


class FakeWooCommerce(FakeShop):
    def __init__(self, orders: list[dict] | None = None, customers: list[dict] | None = None, *,
                 drafts_in_any: bool = False) -> None:
        super().__init__()
        self.orders = {o["id"]: o for o in (fixture("orders.json") if orders is None else orders)}
        self.customers = {c["id"]: c for c in
                          (fixture("customers.json") if customers is None else customers)}
        # older WooCommerce releases list checkout drafts under `status=any` too
        self.drafts_in_any = drafts_in_any
        self.errors = fixture("errors.json")

    # --- what a test changes between two pages --------------------------------------------

    def modify(self, order_id: int, **fields: Any) -> dict:
        order = self.orders[order_id]
        order.update(fields)
        self._touch(order)
        return order

    def create(self, like: int, new_id: int, **fields: Any) -> dict:
        order = copy.deepcopy(self.orders[like])
        order.update(id=new_id, number=str(new_id), **fields)
        gmt = self.now.replace(tzinfo=None)
        order["date_created_gmt"] = gmt.isoformat()
        order["date_created"] = (gmt + SITE_OFFSET).isoformat()
        self._touch(order)
        self.orders[new_id] = order
        return order

    def _touch(self, order: dict) -> None:
        gmt = self.now.replace(tzinfo=None)
        order["date_modified_gmt"] = gmt.isoformat()
        order["date_modified"] = (gmt + SITE_OFFSET).isoformat()

    # --- answers --------------------------------------------------------------------------

    def refusal(self) -> Answer:
        return json_answer(self.errors["woocommerce_rest_authentication_error"], 401)

    def server_error(self) -> Answer:
        return json_answer({"code": "internal_server_error", "message": "There has been a"
                            " critical error on this website.", "data": {"status": 500}}, 500)

    def respond(self, request: Request) -> Answer:
        if (request.user, request.password) != (KEY, SECRET):
            return self.refusal()
        if request.path == f"{BASE}/orders":
            return self._orders(request)
        if request.path == f"{BASE}/customers":
            return self._customers(request)
        return json_answer(self.errors["rest_no_route"], 404)

    def _orders(self, request: Request) -> Answer:
        params = request.params
        problem = self._check(request, ORDER_PARAMS, ORDER_ORDERBY, "desc")
        if problem is None and params.get("status", "any") not in STATUSES:
            problem = "status"
        if problem is None and params.get("dates_are_gmt", "false") not in ("true", "false", "1", "0"):
            problem = "dates_are_gmt"
        after = params.get("modified_after")
        if problem is None and after is not None:
            try:
                datetime.fromisoformat(after)
            except ValueError:
                problem = "modified_after"
        if problem:
            return self._invalid(problem)
        status = params.get("status", "any")
        gmt = params.get("dates_are_gmt") in ("true", "1")
        found = [o for o in self.orders.values() if self._listed(o, status)]
        if after is not None:
            field = "date_modified_gmt" if gmt else "date_modified"
            found = [o for o in found if datetime.fromisoformat(o[field]) > datetime.fromisoformat(after)]
        key = {"id": lambda o: o["id"], "date": lambda o: o["date_created_gmt"]}.get(
            params.get("orderby", "date"), lambda o: o["id"])
        found.sort(key=key, reverse=params.get("order", "desc") == "desc")
        return self._page(request, found)

    def _listed(self, order: dict, status: str) -> bool:
        if status == "any":
            hidden = ("trash",) if self.drafts_in_any else ("trash", "checkout-draft")
            return order["status"] not in hidden
        return order["status"] == status

    def _customers(self, request: Request) -> Answer:
        problem = self._check(request, CUSTOMER_PARAMS, CUSTOMER_ORDERBY, "asc")
        if problem:
            return self._invalid(problem)
        found = sorted(self.customers.values(), key=lambda c: c["id"],
                       reverse=request.params.get("order", "asc") == "desc")
        return self._page(request, found)

    def _check(self, request: Request, allowed: set[str], orderby: tuple[str, ...],
               order: str) -> str | None:
        params = request.params
        unknown = sorted(set(params) - allowed - {"_fields"})
        if unknown or request.repeated:
            return (unknown or request.repeated)[0]
        if params.get("orderby", orderby[0]) not in orderby:
            return "orderby"
        if params.get("order", order) not in ("asc", "desc"):
            return "order"
        for name, low, high in (("per_page", 1, 100), ("page", 1, 10**6)):
            value = params.get(name, "1")
            if not value.isdigit() or not low <= int(value) <= high:
                return name
        return None

    def _invalid(self, name: str) -> Answer:
        error = copy.deepcopy(self.errors["rest_invalid_param"])
        error["message"] = f"Invalid parameter(s): {name}"
        error["data"]["params"] = {name: f"{name} is not valid."}
        return json_answer(error, 400)

    def _page(self, request: Request, found: list[dict]) -> Answer:
        per_page = int(request.params.get("per_page", "10"))
        page = int(request.params.get("page", "1"))
        total = len(found)
        pages = math.ceil(total / per_page)
        if page > max(pages, 1):
            return json_answer({"code": "rest_post_invalid_page_number", "message": "The page"
                                " number requested is larger than the number of pages"
                                " available.", "data": {"status": 400}}, 400)
        links = []
        for rel, number in (("prev", page - 1), ("next", page + 1)):
            if 1 <= number <= pages:
                query = urlencode({**request.params, "page": number})
                links.append(f'<https://boutique.example{request.path}?{query}>; rel="{rel}"')
        headers = {"X-WP-Total": str(total), "X-WP-TotalPages": str(pages)}
        if links:
            headers["Link"] = ", ".join(links)
        return json_answer(found[(page - 1) * per_page:page * per_page], headers=headers)
