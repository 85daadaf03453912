"""What click tracking costs (issue 13), each figure beside a reference measured in the same run.

  - rendering: the abandoned-cart reminder with its links tracked (a signed token each), against
    the same e-mail untracked (the reference);
  - serve: tracked clicks recorded and redirected per second by a real `serve` (waitress, on
    127.0.0.1, 32 concurrent clients with http.client), against the unsubscribe page of the
    same server (a GET that opens the store and reads the customer: the reference).

    python bench/tracking.py [--seconds 2] [--runs 5] [--clicks 2000]
"""

from __future__ import annotations

import argparse
import http.client
import os
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MAILFLOW_SECRET", "bench")

from mailflow.config import load_config  # noqa: E402
from mailflow.consent.tokens import make_token  # noqa: E402
from mailflow.consent.tracking_tokens import click_token, message_reference  # noqa: E402
from mailflow.render.context import cart_view, message_context  # noqa: E402
from mailflow.render.samples import NOW, sample_cart, sample_customer  # noqa: E402
from mailflow.render.templates import Renderer  # noqa: E402
from mailflow.render.tracked import MessageTracker  # noqa: E402
from mailflow.store import Store  # noqa: E402
from mailflow.web.app import App  # noqa: E402
from mailflow.web.server import Server  # noqa: E402

STARTER = ROOT / "mailflow" / "data" / "rules.yaml"
TRACKING = "\ntracking:\n  url: https://boutique.example/mf\n"
MESSAGES = 200  # sent messages the clicks are spread over


def render_rates(folder: Path, seconds: float, runs: int) -> dict[str, float]:
    config = load_config(folder / "rules.yaml")
    rule = config.rule("abandoned-cart")
    renderer = Renderer(folder / "templates", config.shop)
    secret = b"bench"
    carts = [cart_view(sample_cart("fr") | {"id": f"C-{n}"}) for n in range(50)]

    def render(n: int, tracked: bool) -> None:
        key = f"abandoned-cart:cart:C-{n}@2026-11-22T09:40:00Z"
        context = message_context(
            shop=config.shop, rule=rule, rule_name=rule.template, category=rule.category,
            order=None, cart=carts[n % 50], customer=sample_customer("fr"),
            unsubscribe_url=f"https://boutique.example/desabonnement?token={n}", now=NOW)
        rendered = renderer.render(rule.template, "fr", context, campaign=rule.name,
                                   tracker=MessageTracker(config.tracking, key, secret)
                                   if tracked else None)
        rendered.html  # noqa: B018 - links, inlining
        rendered.text  # noqa: B018

    results: dict[str, list[float]] = {"untracked (reference)": [], "tracked": []}
    for _ in range(runs):
        # one call of each in turn, each timed apart: a load that comes and goes on the shared
        # machine weighs on both alike
        spent = {False: 0.0, True: 0.0}
        calls, started = 0, time.perf_counter()
        while time.perf_counter() - started < 2 * seconds:
            for tracked in (False, True):
                began = time.perf_counter()
                render(calls, tracked)
                spent[tracked] += time.perf_counter() - began
            calls += 1
        results["untracked (reference)"].append(calls / spent[False])
        results["tracked"].append(calls / spent[True])
    return {name: statistics.median(values) for name, values in results.items()}


def seed_outbox(db: Path) -> list[tuple[str, str]]:
    """MESSAGES sent messages, as `send` leaves them; their (reference, url) to click."""
    store = Store.open(db)
    links = []
    with store.transaction() as conn:
        for n in range(MESSAGES):
            key = f"abandoned-cart:cart:C-{n}@2026-11-22T09:40:00Z"
            reference = message_reference(key, b"bench")
            conn.execute("INSERT INTO outbox (key, rule, subject_type, subject_id, email,"
                         " email_key, status, due_at, decided_at, sent_at, tracked, locale,"
                         " reference) VALUES (?, 'abandoned-cart', 'cart', ?, ?, ?, 'sent', ?,"
                         " ?, ?, 1, 'fr', ?)",
                         (key, f"C-{n}", f"c{n}@example.com", f"c{n}@example.com",
                          "2026-11-22T09:40:00Z", "2026-11-22T10:00:00Z",
                          "2026-11-22T10:00:00Z", reference))
            for path in ("/cart/recover/C-1", "/", "/collections/new"):
                links.append((reference, f"https://boutique.example{path}?utm_source=mailflow"
                                   "&utm_campaign=abandoned-cart"))
    store.close()
    return links


def serve_rates(folder: Path, clicks: int, runs: int) -> tuple[dict[str, float], int]:
    config = load_config(folder / "rules.yaml")
    db = folder / "mailflow.db"
    links = seed_outbox(db)
    paths = [urlsplit(f"{config.tracking.url}/c/{click_token(k, u, b'bench')}").path
             for k, u in links]
    unsubscribe = [f"/desabonnement?token={make_token(f'c{n}@example.com', b'bench')}"
                   for n in range(MESSAGES)]
    server = Server(App(config, db, lambda: None), "127.0.0.1", 0, 10)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    local = threading.local()

    def get(path: str, expected: int) -> None:
        if getattr(local, "conn", None) is None:
            local.conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        local.conn.request("GET", path)
        response = local.conn.getresponse()
        response.read()
        assert response.status == expected, response.status

    def burst(chosen: list[str], expected: int) -> float:
        started = time.perf_counter()
        with ThreadPoolExecutor(32) as pool:
            list(pool.map(lambda p: get(p, expected), chosen))
        return len(chosen) / (time.perf_counter() - started)

    results: dict[str, list[float]] = {"unsubscribe page (reference)": [], "tracked click": []}
    try:
        for _ in range(runs):
            results["unsubscribe page (reference)"].append(
                burst([unsubscribe[n % len(unsubscribe)] for n in range(clicks)], 200))
            results["tracked click"].append(burst([paths[n % len(paths)] for n in range(clicks)],
                                                  303))
    finally:
        server.stop()
        thread.join(10)
    store = Store.open(db)
    recorded = store.conn.execute("SELECT sum(count) FROM clicks").fetchone()[0]
    store.close()
    return {name: statistics.median(values) for name, values in results.items()}, recorded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--clicks", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "rules.yaml").write_text(STARTER.read_text() + TRACKING)
        (folder / "templates").symlink_to(ROOT / "mailflow" / "data" / "templates")
        rendering = render_rates(folder, args.seconds, args.runs)
        serving, recorded = serve_rates(folder, args.clicks, args.runs)
    print(f"abandoned-cart reminder, fr, median of {args.runs} runs, e-mails/s on one core:")
    for name, value in rendering.items():
        print(f"  {name:<30} {value:>9,.0f}/s")
    reference = rendering["untracked (reference)"]
    print(f"  tracked / untracked: {rendering['tracked'] / reference:6.1%}")
    print(f"serve, {args.clicks} requests a run from 32 clients, median of {args.runs} runs:")
    for name, value in serving.items():
        print(f"  {name:<30} {value:>9,.0f}/s")
    ratio = serving["tracked click"] / serving["unsubscribe page (reference)"]
    print(f"  clicks / unsubscribe page: {ratio:6.1%}")
    print(f"  clicks recorded: {recorded:,} of {args.clicks * args.runs:,}")


if __name__ == "__main__":
    main()
