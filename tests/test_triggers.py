"""The trigger registry (mailflow/rules/triggers.py): each trigger once, and one test for each.

A trigger added to TRIGGERS without its line in INSTANCES below fails here: say which
instance key a message of it gets (docs/rules.md, "Triggers and keys"), and the test checks
that a rule on it finds that instance in a store that holds one.
"""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

import pytest

from mailflow.config import Rule, load_config
from mailflow.records import STATUSES
from mailflow.rules.engine import Planner
from mailflow.rules.triggers import CONDITIONS, TRIGGERS, NotRegistered, trigger
from mailflow.store import Store

TEMPLATES = Path(__file__).parent.parent / "mailflow" / "data" / "templates"
NOW = "2026-03-02T12:00:00+00:00"
ORDERS = "order_id,email,status,payment_method,created_at,total,line_sku,line_name,line_quantity," \
    "line_price,refunded_amount\n" + "".join(
        f"S-{status},{status}@example.com,{status},Virement,2026-03-02 11:00:00,10.00,M,Mug,1,10.00,\n"
        for status in STATUSES) + \
    "S-part,part@example.com,shipped,Virement,2026-03-02 11:00:00,10.00,M,Mug,1,10.00,2.50\n"
CARTS = "cart_id,email,created_at,updated_at,line_sku,line_name,line_quantity,line_price\n" \
    "C-1,cart@example.com,2026-03-02 10:00:00,2026-03-02 11:00:00,M,Mug,1,10.00\n"
# trigger -> the instance of its message about the data above (the key is RULE:INSTANCE)
INSTANCES = {
    "cart.abandoned": "cart:C-1@2026-03-02T10:00:00Z",
    "order.placed": "order:S-paid",
    **{f"order.{status}": f"order:S-{status}:{status}" for status in STATUSES},
    "customer.created": "customer:paid@example.com",
    "customer.inactive": "customer:paid@example.com@2026-03-02T10:00:00Z",
}


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    from typer.testing import CliRunner

    from mailflow.cli import app

    folder = tmp_path_factory.mktemp("triggers")
    shutil.copytree(TEMPLATES, folder / "templates")
    (folder / "orders.csv").write_text(ORDERS, encoding="utf-8")
    (folder / "carts.csv").write_text(CARTS, encoding="utf-8")
    (folder / "rules.yaml").write_text("shop: {timezone: Europe/Paris}\n", encoding="utf-8")
    for name in ("orders.csv", "carts.csv"):
        done = CliRunner().invoke(app, ["--db", str(folder / "mailflow.db"), "--config",
                                        str(folder / "rules.yaml"), "import", str(folder / name),
                                        "--now", NOW])
        assert done.exit_code == 0, done.output
    return folder


def test_every_trigger_says_which_instance_it_selects():
    assert set(INSTANCES) == set(TRIGGERS), "each trigger of rules/triggers.py has its test here"


@pytest.mark.parametrize("name", sorted(TRIGGERS))
def test_a_rule_on_each_trigger_loads_and_finds_its_instance(name, shop):
    (shop / f"{name}.yaml").write_text(
        "shop: {timezone: Europe/Paris}\nsender: {from: Shop <hi@shop.example>}\nrules:\n"
        f"  - {{name: r, on: {name}, template: order_confirmation, after: 30m}}\n",
        encoding="utf-8")
    config = load_config(shop / f"{name}.yaml")
    assert config.rules[0].skip_if == TRIGGERS[name].skip_if
    store = Store.open(shop / "mailflow.db")
    try:
        keys = [d.key for d in Planner(store, config, datetime.fromisoformat(NOW)).plan()]
    finally:
        store.close()
    assert f"r:{INSTANCES[name]}" in keys
    if name == "order.refunded":  # a partial refund: the order stays shipped
        assert "r:order:S-part:partially_refunded" in keys


@pytest.mark.parametrize("name", sorted(TRIGGERS))
def test_each_default_condition_is_registered_and_about_the_triggers_subject(name):
    for condition in TRIGGERS[name].skip_if:
        assert CONDITIONS[condition].about == TRIGGERS[name].subject


def test_an_unknown_trigger_raises_instead_of_running_another_query(tmp_path):
    config = load_config(tmp_path / "none.yaml")
    config.rules = [Rule(name="r", on="order.lost", template="order_confirmation")]
    store = Store.open(tmp_path / "mailflow.db")
    try:
        with pytest.raises(NotRegistered, match=r"unknown trigger 'order\.lost'"):
            Planner(store, config, datetime.fromisoformat(NOW)).plan()
    finally:
        store.close()
    with pytest.raises(NotRegistered):
        trigger("order.lost")
