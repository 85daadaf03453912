"""Rendering and message building: escaping, links, money and dates, locales, inlining."""

from __future__ import annotations

import base64
import email
import re
from datetime import UTC, datetime
from email import policy
from email.headerregistry import Address
from email.parser import BytesParser
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import html as lxml_html

from mailflow.config import Shop, load_config
from mailflow.errors import RenderError
from mailflow.render.inline import available
from mailflow.render.mime import build_message
from mailflow.render.preview import compose_preview, template_locales, template_names
from mailflow.render.samples import NOW
from mailflow.render.templates import Renderer, fix_links, safe_url

DEFAULTS = Path(__file__).parent.parent / "mailflow" / "data"
SHOP = Shop(name="Boutique", url="https://boutique.example", address="1 rue X, Paris",
            timezone="Europe/Paris", locale="fr", currency="EUR")


def test_links_become_absolute_and_shop_links_carry_utm():
    html = ('<a href="/compte">a</a> <a href="https://boutique.example/p?x=1">b</a>'
            ' <a href="https://other.example/">c</a> <img src="/logo.png">'
            ' <a href="javascript:alert(1)">d</a> <a href="mailto:a@b.example">e</a>'
            ' <a href="data:text/html,x">f</a> <a href="https://boutique.example/unsub?token=t">g</a>')
    fixed = fix_links(html, "https://boutique.example", "shipped",
                      skip="https://boutique.example/unsub?token=t")
    assert ('href="https://boutique.example/compte?utm_source=mailflow&amp;utm_campaign=shipped"'
            in fixed)
    assert "https://boutique.example/p?x=1&amp;utm_source=mailflow&amp;utm_campaign=shipped" in fixed
    assert 'href="https://other.example/"' in fixed  # not the shop: no UTM
    assert 'src="https://boutique.example/logo.png"' in fixed  # images absolute, no UTM
    assert "javascript:" not in fixed and "data:" not in fixed
    assert fixed.count('href="#"') == 2
    assert 'href="mailto:a@b.example"' in fixed
    assert 'href="https://boutique.example/unsub?token=t"' in fixed  # the token URL untouched


@pytest.mark.parametrize(("value", "expected"), [
    ("https://track.example/1", "https://track.example/1"), ("javascript:alert(1)", ""),
    (" JAVASCRIPT:alert(1)", ""), ("data:text/html;base64,xx", ""), (None, ""),
    ("//evil.example", ""), ("http://ok.example", "http://ok.example")])
def test_urls_from_data_become_links_only_when_http(value, expected):
    assert safe_url(value) == expected


def _renderer(tmp_path: Path, files: dict[str, str], shop: Shop = SHOP) -> Renderer:
    folder = tmp_path / "templates"
    folder.mkdir(parents=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return Renderer(folder, shop, "premailer")


def test_money_and_dates_follow_the_message_locale_and_shop_timezone(tmp_path):
    body = ("{% block subject %}S{% endblock %}<p>{{ '12.5' | money('EUR') }}|"
            "{{ order.created_at | date }}</p>")
    r = _renderer(tmp_path, {"t.fr.html": body, "t.en.html": body})
    order = {"created_at": NOW.replace(hour=23, minute=30)}  # 00:30 next day in Paris
    fr = r.render("t", "fr_FR", {"order": order}, campaign="c")
    en = r.render("t", "en", {"order": order}, campaign="c")
    assert "12,50\xa0€|13 mars 2026" in fr.html
    assert "€12.50|March 13, 2026" in en.html
    assert (fr.locale, en.locale) == ("fr", "en")


def test_locale_variant_then_shop_locale_then_plain(tmp_path):
    r = _renderer(tmp_path, {"a.fr.html": "{% block subject %}fr{% endblock %}",
                             "a.html": "{% block subject %}plain{% endblock %}",
                             "b.html": "{% block subject %}plain b{% endblock %}"})
    assert r.render("a", "de", {}, campaign="c").subject == "fr"  # shop locale fr
    assert r.render("a", "fr", {}, campaign="c").subject == "fr"
    assert r.render("b", "en", {}, campaign="c").subject == "plain b"


def test_an_undefined_value_is_an_error_naming_file_and_line(tmp_path):
    r = _renderer(tmp_path, {"t.html": "{% block subject %}S{% endblock %}\n<p>\n{{ order.nope }}</p>"})
    with pytest.raises(RenderError, match=r"templates/t.html:3: .*nope"):
        r.render("t", None, {"order": {}}, campaign="c")
    r2 = _renderer(tmp_path / "x", {"t.html": "<p>no subject</p>"})
    with pytest.raises(RenderError, match=re.escape("no {% block subject %}")):
        r2.render("t", None, {}, campaign="c")


def test_css_is_inlined_and_media_rules_kept(tmp_path):
    body = ("<html><head><style>p.x { color: #123456; } @media only screen and (max-width: 620px)"
            " { p.x { font-size: 20px !important; } }</style></head><body>"
            "{% block subject %}S{% endblock %}<p class='x'>hi</p></body></html>")
    for name in available():
        r = Renderer(_renderer(tmp_path / name, {"t.html": body}).folder, SHOP, name)
        out = r.render("t", None, {}, campaign="c").html
        assert re.search(r'<p[^>]*style="[^"]*color:\s*#123456', out), (name, out)
        assert "@media only screen and (max-width: 620px)" in out
        assert "!important" in out


def _styles(html: str) -> list[tuple[str, str]]:
    tree = lxml_html.fromstring(html)
    found = []
    for element in tree.iter():
        style = element.get("style") if isinstance(element.tag, str) else None
        if style:
            rules = sorted(" ".join(part.split()).replace(": ", ":").lower()
                           for part in style.split(";") if part.strip())
            found.append((element.tag, ";".join(rules)))
    return found


@pytest.mark.skipif("css-inline" not in available(), reason="css-inline not installed")
def test_premailer_and_css_inline_give_the_same_styles_on_every_default_template(monkeypatch):
    monkeypatch.setenv("MAILFLOW_SECRET", "x")
    config = load_config(DEFAULTS / "rules.yaml")
    compared = 0
    for name in template_names(config):
        for locale in template_locales(config, name):
            slow = compose_preview(config, None, name, locale=locale, inliner="premailer")
            fast = compose_preview(config, None, name, locale=locale, inliner="css-inline")
            assert _styles(slow.rendered.html) == _styles(fast.rendered.html), (name, locale)
            compared += 1
    assert compared >= 28  # 14 e-mails in French and English


def test_every_default_template_renders_in_every_locale_and_check_passes_them(mailflow):
    mailflow.config = DEFAULTS / "rules.yaml"
    result = mailflow("check")
    problems = [p for p in result.stderr.splitlines() if "the starter's placeholder" not in p]
    assert problems == [] and "templates/" not in result.stderr
    config = load_config(DEFAULTS / "rules.yaml")
    names = template_names(config)
    assert len(names) >= 14
    for name in names:
        assert set(template_locales(config, name)) >= {"fr", "en"}, name


def test_preview_formats_parse_back(mailflow, tmp_path):
    mailflow.config = DEFAULTS / "rules.yaml"
    eml = mailflow("preview", "order-confirmation", "--format", "eml", "--out", tmp_path / "m.eml")
    assert eml.exit_code == 0, eml.stderr
    message = email.message_from_bytes((tmp_path / "m.eml").read_bytes(), policy=policy.default)
    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    assert message["To"].addresses[0].addr_spec == "camille.martin@example.com"
    assert "#1042" in message["Subject"]
    assert message["Message-ID"].endswith("@boutique.example>")
    text = mailflow("preview", "order-confirmation", "--format", "text", "--locale", "en")
    assert "€58.90" in text.stdout
    html = mailflow("preview", "order-confirmation", "--format", "html")
    assert "58,90" in html.stdout and "<html" in html.stdout.lower()
    unknown = mailflow("preview", "order-confirmaton")
    assert unknown.exit_code == 2
    assert "did you mean 'order-confirmation'" in unknown.stderr


def test_marketing_preview_has_one_click_unsubscribe_headers(mailflow, tmp_path):
    mailflow.config = DEFAULTS / "rules.yaml"
    mailflow("preview", "abandoned-cart", "--format", "eml", "--out", tmp_path / "c.eml")
    message = email.message_from_bytes((tmp_path / "c.eml").read_bytes(), policy=policy.default)
    assert message["List-Unsubscribe"].startswith("<https://boutique.example/")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    html = message.get_body(("html",)).get_content()
    assert "token=" in html  # the link in the body too


def test_gallery_links_every_template_in_every_locale(mailflow, tmp_path):
    mailflow.config = DEFAULTS / "rules.yaml"
    result = mailflow("preview", "--all", "--out", tmp_path / "gallery")
    assert result.exit_code == 0, result.stderr
    index = (tmp_path / "gallery" / "index.html").read_text()
    config = load_config(DEFAULTS / "rules.yaml")
    for name in template_names(config):
        for locale in ("fr", "en"):
            assert f'src="{name}.{locale}.html"' in index
            assert (tmp_path / "gallery" / f"{name}.{locale}.txt").read_text().strip()


@given(st.text(alphabet=st.characters(whitelist_categories=("L", "M", "N", "P", "S")),
               min_size=1, max_size=200))
@settings(max_examples=300, deadline=None)
def test_a_non_ascii_subject_of_any_length_reads_back_whole_in_a_mail_client(subject):
    """RFC 2047 words of at most 75 characters, none splitting a character (render/mime.py)."""
    subject = "é" + subject
    data = build_message(from_address=Address("Boutique", "bonjour", "shop.example"),
                         to="client@example.com", to_name=None, subject=subject, text="x\n",
                         html="<p>x</p>", msg_id="<1@shop.example>",
                         date=datetime(2026, 3, 2, 12, 0, tzinfo=UTC))
    header = data.split(b"\r\n\r\n", 1)[0].decode("ascii")
    folded = header.split("Subject: ", 1)[1].split("\r\nDate:", 1)[0]
    words = folded.split("\r\n ")
    assert all(len(word) <= 75 for word in words)
    # each word a whole text of its own: some clients decode the words one by one
    assert "".join(base64.b64decode(w[len("=?utf-8?b?"):-2]).decode("utf-8")
                   for w in words) == subject
    parsed = BytesParser(policy=policy.default).parsebytes(data)
    assert str(parsed["Subject"]) == subject
