"""Golden files of every default e-mail: HTML, text and headers, changed only on purpose.

After a deliberate template change: `pytest tests/test_golden.py --update-golden`, then
read the diff of tests/golden/ before committing it.
"""

from __future__ import annotations

import email
import html
import re
from email import policy
from pathlib import Path

import pytest

from mailflow.config import load_config
from mailflow.render.preview import compose_preview, template_locales, template_names

DEFAULTS = Path(__file__).parent.parent / "mailflow" / "data" / "rules.yaml"
GOLDEN = Path(__file__).parent / "golden"
HEADERS = ("From", "To", "Reply-To", "Subject", "Date", "Message-ID", "Auto-Submitted",
           "List-Unsubscribe", "List-Unsubscribe-Post", "MIME-Version")


def _cases() -> list[tuple[str, str]]:
    config = load_config(DEFAULTS)
    return [(name, locale) for name in template_names(config)
            for locale in template_locales(config, name)]


@pytest.mark.parametrize(("name", "locale"), _cases())
def test_default_email_matches_its_golden_files(name, locale, monkeypatch, update_golden):
    monkeypatch.setenv("MAILFLOW_SECRET", "golden-secret")
    config = load_config(DEFAULTS)
    message = compose_preview(config, None, name, locale=locale, inliner="premailer")
    parsed = email.message_from_bytes(message.build(), policy=policy.default)
    headers = "".join(f"{h}: {parsed[h]}\n" for h in HEADERS if parsed[h] is not None)
    actual = {"html": message.rendered.html, "txt": message.rendered.text, "headers": headers}
    for suffix, content in actual.items():
        path = GOLDEN / f"{name}.{locale}.{suffix}"
        if update_golden or not path.exists():
            if not update_golden:
                pytest.fail(f"{path} is missing: run pytest --update-golden and review it")
            path.parent.mkdir(exist_ok=True)
            path.write_text(content, encoding="utf-8")
        assert content == path.read_text(encoding="utf-8"), (
            f"{path.name} changed: if on purpose, run pytest --update-golden and review the diff")


PREHEADER = re.compile(r'<div data-text="skip" style="display:\s*none;[^"]*">([^<]*)</div>')


@pytest.mark.parametrize(("name", "locale"), _cases())
def test_every_email_has_a_hidden_preheader_and_its_text_begins_with_the_message(
        name, locale, monkeypatch):
    monkeypatch.setenv("MAILFLOW_SECRET", "golden-secret")
    config = load_config(DEFAULTS)
    message = compose_preview(config, None, name, locale=locale)
    found = PREHEADER.search(message.rendered.html)
    assert found, f"{name}.{locale}: no hidden preheader"
    preheader = found.group(1).split("\u200c")[0].replace("\u2007", "").replace("\u034f", "")
    assert len(preheader.strip()) > 15, (name, locale, preheader)
    heading = re.search(r"<h1[^>]*>(.*?)</h1>", message.rendered.html, re.S)
    assert heading
    first = message.rendered.text.splitlines()[0]
    assert first == " ".join(html.unescape(re.sub(r"<[^>]+>", "", heading.group(1))).split())
    assert "http" not in first and preheader.strip() not in message.rendered.text
