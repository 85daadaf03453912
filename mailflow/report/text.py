"""The measured part of `mailflow report` in words, line by line (console.py prints them)."""

from __future__ import annotations

from typing import Any


def money(by_currency: dict[str, str]) -> str:
    return ", ".join(f"{value} {currency}" for currency, value in by_currency.items()) or "0"


def rate(figures: dict[str, Any]) -> str:
    if figures["click_rate"] is None:
        return "not tracked"
    return f"{figures['click_rate'] * 100:.1f}% of {figures['tracked']} tracked"


def _figures(f: dict[str, Any]) -> str:
    opens = (f", opened by a person {f['opens']['human']}, only by a machine"
             f" {f['opens']['machine']}" if f["opens"] is not None else "")
    return (f"sent {f['sent']}, delivered {f['delivered']}, clicked {f['clicked']}"
            f" ({rate(f)}){opens}, unsubscribes {f['unsubscribes']}, bounces {f['bounces']}")


def _orders(f: dict[str, Any]) -> str:
    return (f"orders after a click {f['orders']['click']} ({money(f['revenue']['click'])}),"
            f" after receiving {f['orders']['received']} ({money(f['revenue']['received'])},"
            f" counted apart), revenue per e-mail sent {money(f['revenue_per_email'])}")


def measured_lines(measured: dict[str, Any]) -> list[str]:
    windows = measured["attribution"]
    lines = [f"measured (an order counts within {windows['after_click']} after a click, or"
             f" {windows['after_receiving']} after receiving; tracking"
             f" {'on' if measured['tracking'] else 'off'}, opens"
             f" {'on' if measured['opens'] else 'off'}):"]
    for rule, f in measured["rules"].items():
        lines.append(f"  {rule}: {_figures(f)}")
        lines.append(f"    {_orders(f)}")
        if len(f["languages"]) > 1:
            for locale, part in f["languages"].items():
                lines.append(f"    {locale}: {_figures(part)}; {_orders(part)}")
    return lines
