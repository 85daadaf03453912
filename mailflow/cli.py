"""The command line: a thin adapter. Each command parses, calls one service, prints."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, overload

import typer

from mailflow.errors import MailflowError, UsageError
from mailflow.records import ExitCode

if TYPE_CHECKING:
    from mailflow.config import Config
    from mailflow.store import Store

app = typer.Typer(
    help="Automatic post-purchase e-mails from your shop's exports.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    # plain help and usage errors: typer's rich formatting imports ~80 ms of rich and
    # markdown-it before the first line (CONTRACT §10: `--help` under 200 ms)
    rich_markup_mode=None,
)

NowOption = Annotated[str | None, typer.Option("--now", help="Act as if it were this time "
                                               "(ISO 8601; without offset: shop time).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="Print only what needs a human.")]
NoLockOption = Annotated[bool, typer.Option("--no-lock", hidden=True,
                                            help="Skip the run lock (tests of the database's own"
                                                 " guarantees only).")]


@dataclass
class Globals:
    db: Path
    config: Path
    debug: bool


def _globals(ctx: typer.Context) -> Globals:
    return ctx.obj


@app.callback()
def root(
    ctx: typer.Context,
    db: Annotated[Path | None, typer.Option(help="SQLite store [env: MAILFLOW_DB; "
                                            "default ./mailflow.db]")] = None,
    config: Annotated[Path | None, typer.Option(help="rules.yaml [env: MAILFLOW_CONFIG; "
                                                "default ./rules.yaml]")] = None,
    debug: Annotated[bool, typer.Option(help="Show tracebacks.")] = False,
) -> None:
    ctx.obj = Globals(
        db=db or Path(os.environ.get("MAILFLOW_DB") or "mailflow.db"),
        config=config or Path(os.environ.get("MAILFLOW_CONFIG") or "rules.yaml"),
        debug=debug,
    )


def guarded(command: Callable[..., Any]) -> Callable[..., Any]:
    """The one place errors become a one-line message and an exit code."""

    @functools.wraps(command)
    def run(ctx: typer.Context, *args: Any, **kwargs: Any) -> Any:
        from mailflow import console

        debug = ctx.obj.debug if ctx.obj else False
        try:
            code = command(ctx, *args, **kwargs)
        except MailflowError as exc:
            if debug:
                raise
            for detail in exc.details:
                console.warn(detail)
            console.error(str(exc))
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            console.error("interrupted")
            raise typer.Exit(ExitCode.INTERRUPTED) from None
        except (typer.Exit, typer.Abort):
            raise
        except Exception as exc:
            if debug:
                raise
            from mailflow.store.faults import translate

            meaning = translate(exc, ctx.obj.db) if ctx.obj else None
            if meaning is not None:  # a stray sqlite3 error (outside a transaction), a full disk
                console.error(str(meaning))
                raise typer.Exit(meaning.exit_code) from None
            console.error(f"internal error: {type(exc).__name__}: {exc} (run again with --debug"
                          " for the details, and report it)")
            raise typer.Exit(1) from None
        if code:
            raise typer.Exit(code)
        return None

    return run


def _open(ctx: typer.Context, *, rules: bool = False, reads_only: bool = False,
          ) -> tuple[Config, Store]:
    """The config (required when the command evaluates rules) and the store, which is closed
    when the command ends; `reads_only`: read-only when this user cannot write it."""
    from mailflow.config import load_config
    from mailflow.store import Store

    g = _globals(ctx)
    config = load_config(g.config, check_templates=rules)
    if rules:
        config.require()
    store = Store.open(g.db, reads_only=reads_only)
    ctx.call_on_close(store.close)
    return config, store


@app.command("init")
@guarded
def init_command(
    ctx: typer.Context,
    folder: Annotated[Path, typer.Argument(help="Where to write the project.")] = Path("."),
    platform: Annotated[str | None, typer.Option(help="shopify, woocommerce or prestashop: pull"
                                                 " from its API (docs/sources.md).")] = None,
) -> int:
    """Write a starter project: rules.yaml, templates/ and an exports/ folder."""
    from mailflow import console
    from mailflow.starter import init_project

    written = init_project(folder, platform)
    for path in written:
        console.line(f"wrote {path}")
    return 0


@app.command("import")
@guarded
def import_command(
    ctx: typer.Context,
    files: Annotated[list[Path], typer.Argument(help="Export files (CSV or JSON).")],
    format: Annotated[str | None, typer.Option("--format", help="shopify, woocommerce, "
                                               "mailflow, or mapping (default: detected)")] = None,
    kind: Annotated[str | None, typer.Option(help="orders, carts, customers, unsubscribes or "
                                             "products (default: detected)")] = None,
    mapping: Annotated[Path | None, typer.Option(help="Column map for any other export.")] = None,
    now: NowOption = None,
    json: JsonOption = False,
    quiet: QuietOption = False,
) -> int:
    """Read shop exports into the store; each file all or nothing."""
    from mailflow import console
    from mailflow.clock import parse_now
    from mailflow.importing.service import expectations, import_files
    from mailflow.rules.attribution import attribute_orders

    config, store = _open(ctx)
    moment = parse_now(now, config.shop.tz)
    with console.import_progress(not (json or quiet)) as progress:
        report = import_files(store, files, tz=config.shop.import_tz, now=moment, fmt=format,
                              kind=kind, mapping=mapping, progress=progress,
                              expect=expectations(config.shop.consent,
                                                  sends_marketing=config.sends_marketing))
    attribute_orders(store, config, moment)
    console.import_report(report, as_json=json, quiet=quiet)
    return report.exit_code


@app.command("status")
@guarded
def status_command(ctx: typer.Context, now: NowOption = None, json: JsonOption = False) -> int:
    """What the store holds and how fresh the newest import is."""
    from mailflow import console
    from mailflow.clock import parse_now
    from mailflow.report.status import store_status

    config, store = _open(ctx, reads_only=True)
    summary = store_status(store, parse_now(now, config.shop.tz), order_lines=json)
    console.status_report(summary, as_json=json)
    return 0


@app.command("send")
@guarded
def send_command(
    ctx: typer.Context,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what a real run would do; "
                                          "change nothing.")] = False,
    rule: Annotated[str | None, typer.Option(help="Only this rule.")] = None,
    limit: Annotated[int | None, typer.Option(min=0, help="Send at most N messages.")] = None,
    now: NowOption = None,
    json: JsonOption = False,
    quiet: QuietOption = False,
    no_lock: NoLockOption = False,
) -> int:
    """Evaluate the rules at --now and deliver what is due."""
    from mailflow import console
    from mailflow.clock import parse_now
    from mailflow.delivery.send import send_due

    g = _globals(ctx)
    config, store = _open(ctx, rules=True, reads_only=dry_run)
    moment = parse_now(now, config.shop.tz)
    if dry_run:  # reads only: no lock needed
        report = send_due(store, config, moment, dry_run=True, only_rule=rule, limit=limit)
        console.send_report(report, as_json=json, quiet=quiet)
        return report.exit_code
    with _locked(g, no_lock) as holding:
        if not holding:
            return 0
        report = send_due(store, config, moment, only_rule=rule, limit=limit,
                          recover=not no_lock)
    console.send_report(report, as_json=json, quiet=quiet)
    return report.exit_code


@app.command("log")
@guarded
def log_command(
    ctx: typer.Context,
    email: Annotated[str | None, typer.Option(help="Only this recipient.")] = None,
    rule: Annotated[str | None, typer.Option(help="Only this rule.")] = None,
    since: Annotated[str | None, typer.Option(help="Only decisions this recent (e.g. 24h, 7d).")
                     ] = None,
    now: NowOption = None,
    json: JsonOption = False,
) -> int:
    """Every decision: sent, skipped (with reason), deferred, failed, unknown."""
    from mailflow import console
    from mailflow.clock import iso, parse_now

    config, store = _open(ctx, reads_only=True)
    cutoff = None
    if since is not None:
        moment = parse_now(now, config.shop.tz)
        cutoff = iso(moment - _duration("--since", since))
    console.log_report(store.log(email=email, rule=rule, since=cutoff), as_json=json)
    return 0


@app.command("check")
@guarded
def check_command(
    ctx: typer.Context,
    json: JsonOption = False,
    sources: Annotated[bool, typer.Option("--sources", help="Also try each API source's"
                                          " credentials and say what it would fetch.")] = False,
    now: NowOption = None,
) -> int:
    """Validate rules.yaml (and flag the starter's placeholders left), and render every
    template in every locale against sample data."""
    from mailflow import console
    from mailflow.render.preview import check_project

    config, store = _open(ctx, rules=True)
    if sources:
        from mailflow.clock import parse_now
        from mailflow.importing.api.pull import pull_all

        report = pull_all(store, config.apis, config.shop.tz, parse_now(now, config.shop.tz),
                          dry_run=True)
        console.pull_report(report, as_json=False, quiet=False)
        if report.exit_code:
            return report.exit_code
    problems = check_project(config)
    if json:
        console.emit_json({"config": str(config.path), "rules": [r.name for r in config.rules],
                           "problems": problems, "ok": not problems})
    for problem in problems:
        console.warn(problem)
    if not problems and not json:
        console.line(f"{config.path}: {len(config.rules)} rules valid, every template renders")
    return 1 if problems else 0


@app.command("preview")
@guarded
def preview_command(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="A rule or template name.")] = None,
    order: Annotated[str | None, typer.Option(help="Use this order from the store.")] = None,
    cart: Annotated[str | None, typer.Option(help="Use this cart from the store.")] = None,
    customer: Annotated[str | None, typer.Option(help="Use this customer (e-mail).")] = None,
    locale: Annotated[str | None, typer.Option(help="Language of the e-mail.")] = None,
    format: Annotated[str, typer.Option("--format", help="html, text or eml.")] = "html",
    out: Annotated[Path | None, typer.Option(help="Write to this file (with --all: a folder).")
                   ] = None,
    open_: Annotated[bool, typer.Option("--open", help="Open the result in a browser.")] = False,
    all_: Annotated[bool, typer.Option("--all", help="A gallery of every template.")] = False,
    now: NowOption = None,
) -> int:
    """Render one e-mail (built-in sample data unless --order/--cart/--customer), or --all."""
    from mailflow import console
    from mailflow.clock import parse_now
    from mailflow.render.preview import (
        as_format,
        compose_preview,
        gallery,
        open_in_browser,
        save_preview,
    )

    config, store = _open(ctx, rules=True, reads_only=True)
    if all_:
        if out is None:
            raise UsageError("preview --all needs --out DIR")
        target = gallery(config, out)
        console.line(f"wrote {target}")
    else:
        if name is None:
            raise UsageError("preview needs a rule or template name (or --all --out DIR)")
        if sum(x is not None for x in (order, cart, customer)) > 1:
            raise UsageError("use one of --order, --cart, --customer")
        message = compose_preview(config, store, name, order=order, cart=cart, customer=customer,
                                  locale=locale, now=parse_now(now, config.shop.tz) if now else None)
        data = as_format(message, format)
        if out is None and not open_:
            console.raw(data)
            return 0
        target = save_preview(data, name, format, out)
        console.line(f"wrote {target}")
    if open_:
        open_in_browser(target)
    return 0


@app.command("send-test")
@guarded
def send_test_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A rule or template name.")],
    to: Annotated[str, typer.Option("--to", help="Your own address: the test goes there.")],
    order: Annotated[str | None, typer.Option(help="Use this order from the store.")] = None,
    cart: Annotated[str | None, typer.Option(help="Use this cart from the store.")] = None,
    customer: Annotated[str | None, typer.Option(help="Use this customer (e-mail).")] = None,
    locale: Annotated[str | None, typer.Option(help="Language of the e-mail.")] = None,
    now: NowOption = None,
    json: JsonOption = False,
) -> int:
    """Send one e-mail, marked [TEST], to your own address through the configured transport;
    recorded nowhere (docs/delivery.md)."""
    from mailflow import console
    from mailflow.clock import parse_now
    from mailflow.delivery.send_test import send_test

    config, store = _open(ctx, rules=True)
    report = send_test(config, store, name, to, now=parse_now(now, config.shop.tz), order=order,
                       cart=cart, customer=customer, locale=locale)
    console.send_test_report(report, as_json=json)
    return report.exit_code


@app.command("run")
@guarded
def run_command(ctx: typer.Context, now: NowOption = None, json: JsonOption = False,
                quiet: QuietOption = False, no_lock: NoLockOption = False) -> int:
    """Import every new export matching sources:, then send: the cron entry point."""
    from mailflow import console
    from mailflow.clock import parse_now
    from mailflow.delivery.run import run_once

    g = _globals(ctx)
    config, store = _open(ctx, rules=True)
    with _locked(g, no_lock) as holding:
        if not holding:
            return 0
        report = run_once(store, config, parse_now(now, config.shop.tz), recover=not no_lock)
    console.run_report(report, as_json=json, quiet=quiet)
    return report.exit_code


@app.command("pull")
@guarded
def pull_command(
    ctx: typer.Context,
    source: Annotated[str | None, typer.Option(help="Only this API source (its name).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Fetch and count; write nothing.")
                       ] = False,
    since: Annotated[str | None, typer.Option(help="Ask for what changed this long before --now"
                                              " (e.g. 2d), instead of since the watermark.")
                     ] = None,
    now: NowOption = None,
    json: JsonOption = False,
    quiet: QuietOption = False,
) -> int:
    """Fetch what changed in the shop's API sources into the store (docs/sources.md)."""
    from mailflow import console
    from mailflow.clock import parse_now
    from mailflow.importing.api.pull import pull_all
    from mailflow.rules.attribution import attribute_orders

    config, store = _open(ctx)
    moment, window = parse_now(now, config.shop.tz), _duration("--since", since)
    if dry_run:
        report = pull_all(store, config.apis, config.shop.tz, moment, only=source, dry_run=True,
                          since=window)
    else:
        with _locked(_globals(ctx), False) as holding:
            if not holding:
                return 0
            report = pull_all(store, config.apis, config.shop.tz, moment, only=source,
                              since=window)
            attribute_orders(store, config, moment)
    console.pull_report(report, as_json=json, quiet=quiet)
    return report.exit_code


codes_app = typer.Typer(help="Single-use discount codes for the rules' offers (pools).",
                        no_args_is_help=True)
app.add_typer(codes_app, name="codes")


@codes_app.command("import")
@guarded
def codes_import_command(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="A CSV of codes (a Code column), or one per line.")],
    pool: Annotated[str, typer.Option(help="The pool a rule's `offer: {pool: NAME}` names.")],
    now: NowOption = None,
    json: JsonOption = False,
) -> int:
    """Add single-use codes to an offer's pool; each goes to one recipient, once."""
    from mailflow import console
    from mailflow.clock import parse_now
    from mailflow.importing.codes import import_codes

    config, store = _open(ctx)
    report = import_codes(store, file, pool, parse_now(now, config.shop.tz))
    console.codes_report(report, as_json=json, used_by=config.offer_pools)
    return report.exit_code


@codes_app.command("status")
@guarded
def codes_status_command(ctx: typer.Context, json: JsonOption = False) -> int:
    """Each pool: its codes, how many were given, how many are left."""
    from mailflow import console
    from mailflow.importing.codes import pools_status

    config, store = _open(ctx, reads_only=True)
    console.pools_report(pools_status(store, config.offer_pools), as_json=json)
    return 0


KeysArgument = Annotated[list[str] | None, typer.Argument(
    metavar="KEY...", help="Message keys, as `mailflow log` shows them.", show_default=False)]
FollowRuleOption = Annotated[str | None, typer.Option(
    "--rule", help="The failed or unknown messages of this rule.")]
FollowSinceOption = Annotated[str | None, typer.Option(
    "--since", help="Those that failed this recently (e.g. 24h, 7d) before --now.")]
FollowDryOption = Annotated[bool, typer.Option("--dry-run", help="List them; change nothing.")]


@app.command("resend")
@guarded
def resend_command(ctx: typer.Context, keys: KeysArgument = None, rule: FollowRuleOption = None,
                   since: FollowSinceOption = None, dry_run: FollowDryOption = False,
                   now: NowOption = None, json: JsonOption = False) -> int:
    """Queue unknown or failed messages again, on purpose (the next send delivers them)."""
    from mailflow import console
    from mailflow.clock import parse_now
    from mailflow.delivery.attention import resend

    config, store = _open(ctx)
    report = resend(store, keys or [], rule=rule, since=_duration("--since", since),
                    now=parse_now(now, config.shop.tz), dry_run=dry_run)
    console.follow_up_report(report, as_json=json)
    return 0


@app.command("dismiss")
@guarded
def dismiss_command(ctx: typer.Context, keys: KeysArgument = None, rule: FollowRuleOption = None,
                    since: FollowSinceOption = None, dry_run: FollowDryOption = False,
                    now: NowOption = None, json: JsonOption = False) -> int:
    """Mark failed or unknown messages as seen: they no longer make every run exit 1."""
    from mailflow import console
    from mailflow.clock import parse_now
    from mailflow.delivery.attention import dismiss

    config, store = _open(ctx)
    report = dismiss(store, keys or [], rule=rule, since=_duration("--since", since),
                     now=parse_now(now, config.shop.tz), dry_run=dry_run)
    console.follow_up_report(report, as_json=json)
    return 0


@overload
def _duration(option: str, value: str) -> timedelta: ...


@overload
def _duration(option: str, value: None) -> None: ...


def _duration(option: str, value: str | None) -> timedelta | None:
    """A duration option (`--since 7d`), or exit 2 naming the option."""
    from mailflow.clock import parse_duration

    try:
        return parse_duration(value) if value is not None else None
    except ValueError as exc:
        raise UsageError(f"{option}: {exc}") from None


@app.command("unsubscribe")
@guarded
def unsubscribe_command(
    ctx: typer.Context,
    emails: Annotated[list[str] | None, typer.Argument(help="Addresses to unsubscribe.")] = None,
    token: Annotated[str | None, typer.Option(help="Apply a signed token from a link.")] = None,
    now: NowOption = None,
    json: JsonOption = False,
) -> int:
    """Stop marketing e-mails to these addresses (order e-mails still go)."""
    from mailflow import console
    from mailflow.clock import parse_now
    from mailflow.consent.suppressions import address_of, unsubscribe

    config, store = _open(ctx)
    if token is None and not emails:
        raise UsageError("unsubscribe needs addresses, or --token TOKEN")
    addresses = [*(emails or []), *([address_of(token, config)] if token is not None else [])]
    report = unsubscribe(store, addresses, parse_now(now, config.shop.tz))
    console.subscription_report(report, "unsubscribed", as_json=json)
    return 0


@app.command("resubscribe")
@guarded
def resubscribe_command(
    ctx: typer.Context,
    emails: Annotated[list[str], typer.Argument(help="Addresses to subscribe again.")],
    json: JsonOption = False,
) -> int:
    """Undo an unsubscribe (bounces and complaints stay suppressed)."""
    from mailflow import console
    from mailflow.consent.suppressions import resubscribe

    _, store = _open(ctx)
    console.subscription_report(resubscribe(store, emails), "resubscribed", as_json=json)
    return 0


@app.command("serve")
@guarded
def serve_command(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (0: any free one, printed).")] = 8025,
    timeout: Annotated[str, typer.Option(help="Close a connection idle or half-sent this long.")] = "30s",
) -> int:
    """The one-click unsubscribe endpoint (RFC 8058), the tracked links and open pixel of
    `tracking:`, and the webhooks."""
    from mailflow.consent.tokens import secret_from_env
    from mailflow.web.server import serve

    config, store = _open(ctx)
    store.close()  # each request opens its own
    secret_from_env(config.unsubscribe.secret_env)  # refuse to start without it
    seconds = int(_duration("--timeout", timeout).total_seconds())
    if seconds < 1:
        raise UsageError("--timeout: at least 1s")
    serve(config, _globals(ctx).db, host, port, seconds)
    return 0


@app.command("purge")
@guarded
def purge_command(
    ctx: typer.Context,
    older_than: Annotated[str, typer.Option("--older-than", help="e.g. 3y is 1095d, 730d, 52w.")],
    vacuum: Annotated[bool, typer.Option(
        "--vacuum", help="Then rebuild the file to its new size (once, for a store made before"
        " mailflow shrank it by itself).")] = False,
    now: NowOption = None,
    json: JsonOption = False,
) -> int:
    """Delete personal data past that age; suppressions are kept."""
    from mailflow import console
    from mailflow.clock import parse_now
    from mailflow.consent.purge import purge_older_than

    config, store = _open(ctx, rules=True)
    age = _duration("--older-than", older_than)
    done = purge_older_than(store, config, age, parse_now(now, config.shop.tz), vacuum=vacuum)
    console.purge_report(done, as_json=json)
    return 0


@app.command("report")
@guarded
def report_command(
    ctx: typer.Context,
    since: Annotated[str | None, typer.Option(help="Only this recent (e.g. 30d).")] = None,
    html: Annotated[Path | None, typer.Option(help="Also write a page with a chart.")] = None,
    now: NowOption = None,
    json: JsonOption = False,
) -> int:
    """Per rule and language: sent, clicked, orders and revenue they brought; carts recovered."""
    from mailflow import console
    from mailflow.clock import parse_now
    from mailflow.report.outcomes import build_report
    from mailflow.report.page import write_html

    config, store = _open(ctx, rules=True, reads_only=True)
    window = _duration("--since", since or None)
    report = build_report(store, config, parse_now(now, config.shop.tz), window)
    if html is not None:
        write_html(report, config, html)
    console.outcome_report(report, as_json=json, html=html)
    return 0


@contextmanager
def _locked(g: Globals, no_lock: bool):
    """The run lock; says so on stderr (exit 0) when another run holds it."""
    from mailflow import console
    from mailflow.delivery.lock import run_lock

    if no_lock:
        yield True
        return
    with run_lock(g.db) as holding:
        if not holding:
            console.warn(f"another mailflow run holds the lock on {g.db}: nothing to do")
        yield holding


def main() -> None:
    app()
