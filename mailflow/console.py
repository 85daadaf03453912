"""The one module that prints. Human output on stdout, diagnostics on stderr; colour and
progress bars only on a terminal; `--json` prints one document and nothing else.

Everything printed from data (paths, customer names, reasons, exception text) goes out as
`rich.text.Text`, and the consoles have markup and emoji codes off: rich would otherwise
read `[bold]` as a style and `orders.csv:100:` as the emoji `:100:`. Only this module's own
fixed styling is styled, with `Text` styles, never markup."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from functools import cache
from typing import TYPE_CHECKING, Any

from mailflow.records import OutboxStatus

if TYPE_CHECKING:
    from pathlib import Path

    from rich.console import Console
    from rich.text import Text

    from mailflow.consent.suppressions import SubscriptionReport
    from mailflow.delivery.attention import FollowUp
    from mailflow.delivery.run import RunReport
    from mailflow.delivery.send import SendReport
    from mailflow.delivery.send_test import SendTestReport
    from mailflow.importing.codes import CodesReport
    from mailflow.importing.service import ImportReport, Progress


@cache
def _consoles() -> tuple[Console, Console]:
    # rich is imported on first output: a quiet cron tick prints nothing and saves ~25 ms
    from rich.console import Console

    def plain(stderr: bool) -> Console:
        return Console(stderr=stderr, highlight=False, soft_wrap=True, markup=False, emoji=False)

    return plain(False), plain(True)


PROGRESS_MIN_BYTES = 5 << 20


def _text(value: object) -> Text:
    from rich.text import Text

    return Text(str(value))


def _print(console: Console, renderable: Any) -> None:
    console.print(renderable, markup=False, emoji=False, highlight=False)


def error(message: str) -> None:
    err = _consoles()[1]
    if err.is_terminal:
        from rich.text import Text

        _print(err, Text.assemble(("error:", "bold red"), " ", message))
    else:
        _print(err, _text(f"error: {message}"))


def warn(message: str) -> None:
    _print(_consoles()[1], _text(message))


def emit_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, ensure_ascii=False, indent=2, default=str) + "\n")


def raw(data: bytes) -> None:
    """Bytes on stdout as they are: `preview` of an e-mail."""
    sys.stdout.buffer.write(data)


def line(text: str) -> None:
    _print(_consoles()[0], _text(text))


@contextmanager
def import_progress(enabled: bool) -> Iterator[Progress | None]:
    """A progress callback for big files on a terminal; a no-op otherwise."""
    err = _consoles()[1]
    if not (enabled and err.is_terminal):
        yield None
        return
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    tasks: dict[str, Any] = {}
    with Progress(TextColumn("{task.description}", markup=False), BarColumn(), DownloadColumn(),
                  TimeRemainingColumn(), console=err, transient=True) as bar:

        def update(name: str, done: int, total: int) -> None:
            if total < PROGRESS_MIN_BYTES:
                return
            if name not in tasks:
                tasks[name] = bar.add_task(name, total=total)
            bar.update(tasks[name], completed=done)

        yield update


def _import_problems(report: ImportReport) -> None:
    """On stderr, whatever the output format: rejected rows and refused files."""
    for f in report.files:
        for rejected in f.rejected:
            where = f"{f.path}:{rejected['line']}" if rejected["line"] else f.path
            warn(f"{where}: {rejected['reason']}")
        for warning in f.warnings:
            warn(f"{f.path}: {warning}")
        if f.error:
            error(f.error)


def _message_problem(m: dict[str, Any]) -> None:
    """On stderr, whatever the output format: a failed or unknown message."""
    if m["status"] in (OutboxStatus.FAILED, OutboxStatus.UNKNOWN):
        warn(f"{m['status']}: {m['rule']} to {m['to']}: {m['reason']}")


def _send_problems(report: SendReport) -> None:
    """On stderr, whatever the output format, after each message's own: a blocked delivery,
    messages a dead run left unknown, messages waiting for a human, pools running out."""
    if report.blocked:
        error(f"{report.blocked} (due mail stays queued)")
    if report.recovered:
        warn(f"{report.recovered} message(s) were being sent when an earlier run died: they"
             " are `unknown` (maybe delivered, maybe not) and will not be resent by"
             " themselves; see `mailflow log` and `mailflow resend KEY`")
    if report.awaiting:
        warn(awaiting_line(report.awaiting))
    for low in report.low_pools:
        warn(low_pool_line(low))


def low_pool_line(low: dict[str, Any]) -> str:
    """A pool of offer codes running out: said by every run until codes are imported."""
    left = low["left"]
    what = "no code left" if not left else f"only {left} code{'s' if left > 1 else ''} left"
    return (f"offer pool {low['pool']}: {what} (warn_below: {low['warn_below']}); messages that"
            f" would carry one are skipped as no_code_left: import more with `mailflow codes"
            f" import FILE --pool {low['pool']}`")


def _states(awaiting: dict[str, dict[str, int]]) -> str:
    return ", ".join(f"{rule}: " + ", ".join(f"{n} {s}" for s, n in sorted(states.items()))
                     for rule, states in sorted(awaiting.items()))


def awaiting_line(awaiting: dict[str, dict[str, int]]) -> str:
    """Once per run: what keeps the exit code at 1, and the two ways out."""
    failed = sum(states.get(OutboxStatus.FAILED, 0) for states in awaiting.values())
    total = sum(n for states in awaiting.values() for n in states.values())
    rule = next(iter(awaiting)) if len(awaiting) == 1 else "RULE"
    if failed:
        what = f"{total} message{'s' if total > 1 else ''} failed and wait{'' if total > 1 else 's'}"
        fix = "fix the template (or the where:)"
    else:
        what = (f"{total} message{'s are' if total > 1 else ' is'} unknown (maybe delivered)"
                f" and wait{'' if total > 1 else 's'}")
        fix = "see whether the recipient got it"
    return (f"{what} for you ({_states(awaiting)}): {fix}, `mailflow log --rule {rule}` says why;"
            f" then `mailflow resend --rule {rule}`, or `mailflow dismiss --rule {rule}`"
            " (until then every run exits 1)")


def import_report(report: ImportReport, *, as_json: bool, quiet: bool) -> None:
    _import_problems(report)
    if as_json:
        emit_json(report.as_json())
        return
    if quiet and report.exit_code == 0:
        return
    for f in report.files:
        if f.error:
            continue
        if f.skipped:
            line(f"{f.path}: {f.skipped}, nothing to do")
            continue
        rejected = f", {len(f.rejected)} rejected" if f.rejected else ""
        line(f"{f.path}: {f.format} {f.kind}, {f.rows} rows{rejected}")
    line(
        f"orders: {report.orders.inserted} new, {report.orders.updated} updated"
        f" ({report.status_changes} status changes, {report.lines} lines written); "
        f"carts: {report.carts.inserted} new, {report.carts.updated} updated; "
        f"customers: {report.customers.inserted} new, {report.customers.updated} updated"
        + (f"; unsubscribes: {report.unsubscribes}" if report.unsubscribes else "")
        + (f"; products: {report.products.inserted} new, {report.products.updated} updated"
           if any(f.kind == "products" for f in report.files) else "")
    )


def status_report(summary: dict[str, Any], *, as_json: bool) -> None:
    if as_json:
        emit_json(summary)
        return
    from rich.table import Table

    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()

    def row(label: str, value: object) -> None:
        table.add_row(_text(label), _text(value))

    row("orders", summary["orders"])
    for status, count in summary["orders_by_status"].items():
        row(f"  {status}", count)
    row("carts", summary["carts"])
    row("customers", summary["customers"])
    row("suppressed", summary["suppressed"])
    newest = summary["newest_import_at"]
    age = summary.get("newest_import_age")
    row("newest import", f"{newest} ({age} ago)" if newest else "never")
    for kind, at in summary["newest_import_by_kind"].items():
        row(f"  {kind}", at)
    run = summary.get("last_run")
    row("last run", f"{run['command']} at {run['finished_at']} (--now {run['now']})"
        if run else "never")
    for source in summary.get("sources", []):
        pulled = source["pulled_at"] or "never"
        failed = f"; failed at {source['failed_at']}: {source['failure']}" \
            if source["failed_at"] else ""
        row(f"source {source['name']}", f"pulled {pulled}, watermark"
            f" {source['watermark'] or 'none'}{failed}")
    if summary.get("webhooks_waiting"):
        row("webhooks", f"{summary['webhooks_waiting']} kept, not imported yet")
    row("next due", summary.get("next_due_at") or "nothing waiting")
    awaiting = summary.get("awaiting_human") or {}
    row("awaiting you", f"{awaiting['count']} ({_states(awaiting['rules'])}): `mailflow resend`"
        " or `mailflow dismiss`" if awaiting.get("count") else "nothing")
    for rule, states in summary.get("outbox", {}).items():
        row(f"outbox {rule}", ", ".join(f"{s} {n}" for s, n in states.items()))
    _print(_consoles()[0], table)


def send_report(report: SendReport, *, as_json: bool, quiet: bool) -> None:
    """Each message printed as it comes (a dry run renders them one at a time); with --json,
    one document all the same, written as it goes."""
    if as_json:
        _send_json(report)
        _send_problems(report)
        return
    # --quiet prints nothing unless something needs a human: what a message may still reveal
    held: list[str] | None = [] if quiet and report.exit_code == 0 else None
    for m in report.each_message():
        _message_problem(m)
        status = m["status"].replace("_", " ")
        what = f"{m['subject']!r}" if m["subject"] else (m["reason"] or "")
        code = f" (code {m['offer_code']})" if m.get("offer_code") else ""
        text = f"{status:<10} {m['rule']:<22} {m['to'] or '-':<32} {what}{code}"
        if held is not None and m["status"] in (OutboxStatus.FAILED, OutboxStatus.UNKNOWN):
            for earlier in held:
                line(earlier)
            held = None
        if held is None:
            line(text)
        else:
            held.append(text)
    _send_problems(report)
    if held is not None:
        return
    verb = "would send" if report.dry_run else "sent"
    counts = report.counts
    total = counts.get(OutboxStatus.WOULD_SEND if report.dry_run else OutboxStatus.SENT, 0)
    rest = ", ".join(f"{n} {s.replace('_', ' ')}" for s, n in sorted(counts.items())
                     if s not in (OutboxStatus.SENT, OutboxStatus.WOULD_SEND))
    line(f"{verb} {total}" + (f"; {rest}" if rest else "") + (" (dry run: nothing changed)"
                                                               if report.dry_run else ""))


def _send_json(report: SendReport) -> None:
    """`emit_json(report.as_json())`, byte for byte, with the messages written one by one."""
    out, mark = sys.stdout, '"messages": []'
    opening = json.dumps(report.as_json(messages=[]), ensure_ascii=False, indent=2, default=str)
    out.write(opening[:opening.index(mark)] + '"messages": [')
    written = 0
    for m in report.each_message():
        _message_problem(m)
        item = json.dumps(m, ensure_ascii=False, indent=2, default=str)
        out.write(("," if written else "") + "\n" + "\n".join(f"    {part}"
                                                             for part in item.split("\n")))
        written += 1
    closing = json.dumps(report.as_json(messages=[]), ensure_ascii=False, indent=2, default=str)
    out.write(("\n  ]" if written else "]") + closing[closing.index(mark) + len(mark):] + "\n")


def _pull_problems(report: Any) -> None:
    for source in report.sources:
        for rejected in source.rejected:
            warn(f"{source.name}: {rejected['reason']}")
        if source.error:
            error(source.error)


def pull_report(report: Any, *, as_json: bool, quiet: bool) -> None:
    _pull_problems(report)
    if as_json:
        emit_json(report.as_json())
        return
    if quiet and report.exit_code == 0:
        return
    for s in report.sources:
        if s.error:
            continue
        if s.skipped:
            line(f"{s.name}: not pulled ({s.skipped})")
            continue
        fetched = ", ".join(f"{n} {what}" for what, n in s.fetched.items()) or "nothing new"
        verb = "would fetch" if report.dry_run else "fetched"
        first = " (first pull: history before now sends nothing)" if s.first else ""
        line(f"{s.name}: {verb} {fetched} updated since {s.since}{first}")
    if not report.dry_run:
        w = report.written
        line(f"orders: {w.orders.inserted} new, {w.orders.updated} updated"
             f" ({w.status_changes} status changes); carts: {w.carts.inserted} new,"
             f" {w.carts.updated} updated; customers: {w.customers.inserted} new,"
             f" {w.customers.updated} updated")


def run_report(report: RunReport, *, as_json: bool, quiet: bool) -> None:
    if as_json:
        if report.pulled is not None:
            _pull_problems(report.pulled)
        _import_problems(report.imported)
        _send_problems(report.sent)
        emit_json({"pull": report.pulled.as_json() if report.pulled is not None else None,
                   "import": report.imported.as_json(), "send": report.sent.as_json(),
                   "recovered_unknown": report.sent.recovered})
        return
    if report.pulled is not None:
        pull_report(report.pulled, as_json=False, quiet=True)
    fresh = [f for f in report.imported.files if not f.skipped]  # cron: old files say nothing
    if fresh or report.imported.exit_code:
        import_report(replace(report.imported, files=fresh), as_json=False, quiet=quiet)
    send_report(report.sent, as_json=False, quiet=quiet)


def subscription_report(report: SubscriptionReport, verb: str, *, as_json: bool) -> None:
    if as_json:
        emit_json(report.as_json())
        return
    for address in report.changed:
        line(f"{verb}: {address}")
    for address in report.unchanged:
        line(f"already {verb}: {address}" if verb == "unsubscribed"
             else f"was not unsubscribed: {address}")


def purge_report(done: dict[str, Any], *, as_json: bool) -> None:
    if as_json:
        emit_json(done)
        return
    line(f"removed what is older than {done['cutoff']}: {done['orders']} orders"
         f" ({done['order_lines']} lines), {done['carts']} carts, {done['customers']} customers,"
         f" {done['messages']} messages ({done['message_files']} .eml files),"
         f" {done['webhook_events']} webhook deliveries; kept {done['suppressions_kept']}"
         " suppressions")
    size = f"the database went from {_megabytes(done['bytes_before'])} to {_megabytes(done['bytes_after'])}"
    if done["bytes_free_inside"] and not done["vacuumed"] and done["auto_vacuum"] != "incremental":
        line(f"{size}; {_megabytes(done['bytes_free_inside'])} inside it are free (zeroed) but stay"
             " in the file, made before mailflow shrank it by itself: run this purge once with"
             " --vacuum to rebuild it to its size (it needs that much free disk space and holds"
             " the database while it runs); later purges then shrink it by themselves")
    else:
        line(size)


def _megabytes(count: int) -> str:
    return f"{count / 1_000_000:,.1f} MB"


def outcome_report(report: dict[str, Any], *, as_json: bool, html: Path | None = None) -> None:
    if as_json:
        emit_json(report)
        return
    line(f"since {report['since'] or 'the beginning'}:")
    for rule, c in sorted(report["rules"].items()):
        skipped = ", ".join(f"{r} {n}" for r, n in sorted(c["skipped"].items())) or "none"
        line(f"  {rule}: sent {c['sent']}, skipped {sum(c['skipped'].values())} ({skipped}),"
             f" deferred {c['deferred']}, failed {c['failed']}, unknown {c['unknown']}")
    carts = report["carts"]
    revenue = ", ".join(f"{v} {c}" for c, v in carts["revenue"].items()) or "0"
    line(f"carts: {carts['reminded']} reminded, {carts['recovered']} recovered, revenue {revenue}")
    left_out = ", ".join(f"{n} {s}" for s, n in carts["excluded"].items() if n) or "none"
    line(f"  orders left out of recovered and revenue: {left_out} ({carts['recovered_means']})")
    from mailflow.report.text import measured_lines

    for text in measured_lines(report["measured"]):
        line(text)
    if html is not None:
        line(f"wrote {html}")


def follow_up_report(report: FollowUp, *, as_json: bool) -> None:
    """`resend` / `dismiss`: each message acted on, and how many."""
    if as_json:
        emit_json(report.as_json())
        return
    done = "requeued" if report.action == "resend" else "dismissed"
    for m in report.messages:
        verb = f"would be {done}" if report.dry_run else done
        line(f"{verb}: {m['key']} ({m['status']}: {m['reason'] or 'no reason recorded'})")
    n = len(report.messages)
    count = f"{n} message{'' if n == 1 else 's'}"
    if not n:
        line(f"nothing to {report.action}: no failed or unknown message that nobody dismissed"
             " matches")
    elif report.dry_run:
        line(f"{count} would be {done} (dry run: nothing changed)")
    elif report.action == "resend":
        line(f"{count} requeued: the next `mailflow send` delivers them, with their Message-ID")
    else:
        line(f"{count} dismissed: `mailflow log` keeps them; they no longer make runs exit 1")


def log_report(rows: list[dict[str, Any]], *, as_json: bool) -> None:
    if as_json:
        emit_json(rows)
        return
    for r in rows:
        detail = r["subject"] if r["status"] == OutboxStatus.SENT else (r["reason"] or "")
        if r.get("offer_code"):
            detail += f" (code {r['offer_code']})"
        if r.get("dismissed_at"):
            detail += f" (dismissed {r['dismissed_at']})"
        line(f"{r['decided_at']}  {r['status']:<9} {r['rule']:<22} {r['to'] or '-':<32} {detail}")
    if not rows:
        line("no decisions recorded")



def codes_report(report: CodesReport, *, as_json: bool, used_by: dict[str, int]) -> None:
    """`codes import`: what the file added to its pool, and how many are left."""
    for rejected in report.rejected:
        warn(f"{report.path}:{rejected['line']}: {rejected['reason']}")
    if report.pool not in used_by:
        warn(f"no enabled rule has `offer: {{pool: {report.pool}}}` yet: the codes wait in the"
             " pool until one does")
    if as_json:
        emit_json(report.as_json())
        return
    extra = [f"{n} {what}" for n, what in ((report.already, "already in the pool"),
                                           (report.used, "already used, left out"),
                                           (len(report.rejected), "rejected")) if n]
    line(f"{report.path}: {report.added} codes added to pool {report.pool}"
         + (f" ({', '.join(extra)})" if extra else "") + f"; {report.left} left to give")


def pools_report(pools: list[dict[str, Any]], *, as_json: bool) -> None:
    """`codes status`: each pool's codes, given and left."""
    if as_json:
        emit_json({"pools": pools})
        return
    for p in pools:
        warn_below = f", warn below {p['warn_below']}" if p["warn_below"] else ""
        low = "  (low: `mailflow codes import FILE --pool " + p["pool"] + "`)" \
            if p["warn_below"] and p["left"] < p["warn_below"] else ""
        line(f"{p['pool']}: {p['codes']} codes, {p['given']} given, {p['left']} left{warn_below}{low}")
    if not pools:
        line("no offer pools: `mailflow codes import FILE --pool NAME` adds codes to one")


def send_test_report(report: SendTestReport, *, as_json: bool) -> None:
    """`send-test`: where the one e-mail went, and the starter's values still in it."""
    for placeholder in report.placeholders:
        warn(placeholder)
    if report.placeholders:
        warn("the test went anyway (it goes to you): replace these before customers get mail")
    if report.status is not OutboxStatus.SENT:
        warn(f"{report.status}: {report.detail}")
    if as_json:
        emit_json(report.as_json())
        return
    if report.status is OutboxStatus.SENT:
        where = f"written to {report.detail}" if report.transport == "file" else \
            f"accepted by the SMTP server ({report.detail})"
        line(f"sent {report.subject!r} to {report.to}: {where}; nothing was recorded")
