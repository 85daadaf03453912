"""The gallery in a real browser: headless Chromium (Debian's `chromium`, installed by .ci/run).

Every e-mail of the gallery is loaded at 600 px (desktop column) and 375 px (phone): none
may scroll sideways, and each must show its subject (as its title) and, where it has one,
its total. Screenshots are saved under the test's tmp dir.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from datetime import UTC
from pathlib import Path

import pytest

from mailflow.config import load_config
from mailflow.render.filters import Formatter
from mailflow.render.preview import compose_preview, resolve, template_locales, template_names
from mailflow.render.samples import NOW, sample_subject

DEFAULTS = Path(__file__).parent.parent / "mailflow" / "data" / "rules.yaml"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--allow-file-access-from-files"]
WIDTHS = (600, 375)

pytestmark = pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"),
                                reason="chromium is not installed (.ci/run installs it)")

PROBE = """<!doctype html><html><head><meta charset="utf-8"></head><body>
{frames}
<pre id="result"></pre>
<script>
window.addEventListener("load", function () {{
  var out = [];
  document.querySelectorAll("iframe").forEach(function (f) {{
    var d = f.contentDocument;
    out.push({{file: f.dataset.file, width: f.clientWidth,
               scroll: d.documentElement.scrollWidth, title: d.title,
               text: d.body.innerText}});
  }});
  document.getElementById("result").textContent = JSON.stringify(out);
}});
</script></body></html>"""


def chromium(*args: str, profile: Path) -> str:
    assert CHROMIUM, "chromium must be installed in CI"
    result = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
                            capture_output=True, text=True, timeout=120, check=False)
    return result.stdout


def test_every_email_fits_a_phone_and_a_desktop_and_shows_subject_and_total(
        tmp_path, monkeypatch, mailflow):
    monkeypatch.setenv("MAILFLOW_SECRET", "browser")
    mailflow.config = DEFAULTS
    gallery = tmp_path / "gallery"
    assert mailflow("preview", "--all", "--out", gallery).exit_code == 0
    config = load_config(DEFAULTS)
    expected = {}
    frames = []
    for name in template_names(config):
        for locale in template_locales(config, name):
            message = compose_preview(config, None, name, locale=locale)
            file = f"{name}.{locale}.html"
            order, cart, _ = sample_subject(resolve(config, name).trigger, locale)
            amount = (order or cart or {}).get("total")
            expected[file] = (message.subject, Formatter(locale, "EUR", UTC).money(amount)
                              if amount else None)
            for width in WIDTHS:
                frames.append(f'<iframe data-file="{file}" src="{file}" style="width:{width}px;'
                              f'height:400px;border:0;display:block"></iframe>')
    probe = gallery / "probe.html"
    probe.write_text(PROBE.format(frames="\n".join(frames)), encoding="utf-8")
    dom = chromium("--window-size=1280,900", "--virtual-time-budget=10000", "--dump-dom",
                   probe.as_uri(), profile=tmp_path / "profile")
    match = re.search(r'<pre id="result">(.*?)</pre>', dom, re.S)
    assert match and match.group(1), f"the probe page did not report: {dom[-500:]}"
    results = json.loads(html.unescape(match.group(1)))
    assert len(results) == len(expected) * len(WIDTHS)
    for r in results:
        subject, total = expected[r["file"]]
        where = f"{r['file']} at {r['width']} px"
        assert r["scroll"] <= r["width"], f"{where} scrolls sideways ({r['scroll']} px wide)"
        assert r["title"] == subject, where
        if total:
            assert total in r["text"] or total.replace("\xa0", " ") in r["text"], where
    shots = tmp_path / "screenshots"
    shots.mkdir()
    for file in ("order_confirmation.fr.html", "abandoned_cart.en.html", "order_shipped.fr.html"):
        for width in WIDTHS:
            target = shots / f"{file[:-5]}-{width}.png"
            chromium(f"--window-size={width},1400", f"--screenshot={target}",
                     (gallery / file).as_uri(), profile=tmp_path / "profile")
            assert target.stat().st_size > 5000, target
    index = shots / "gallery.png"
    chromium("--window-size=1400,1800", "--virtual-time-budget=5000", f"--screenshot={index}",
             (gallery / "index.html").as_uri(), profile=tmp_path / "profile")
    assert index.stat().st_size > 5000


# Every key of the service and legal content, and review links: the longest footer and header
CONTENT = """\
  logo: https://cdn.example.org/logo-boutique-tres-large-2400x600.png
  service:
    email: service-client-et-retours-des-commandes@une-boutique-au-nom-tres-long.example
    phone: "+33 1 23 45 67 89"
    hours: {fr: "du lundi au vendredi, de 9 h à 18 h", en: "Monday to Friday, 9am to 6pm"}
  returns:
    url: https://une-boutique.example/conditions-de-retour-et-droit-de-retractation
  terms_url: https://une-boutique.example/conditions-generales-de-vente
  delivery_times:
    colissimo: {fr: "2 à 3 jours ouvrés", en: "2 to 3 working days"}
  review:
    url: https://avis.example/boutique?commande={order.number}
    product: https://une-boutique.example/avis?sku={line.sku}
  social:
    Instagram: https://www.instagram.com/une.boutique
    Facebook: https://www.facebook.com/une.boutique
    Pinterest: https://www.pinterest.fr/une.boutique
"""
STYLE = re.compile(r"<style\b.*?</style>", re.S | re.I)
PHONE_PROBE = """<!doctype html><html><head><meta charset="utf-8"></head><body>
{frames}
<pre id="result"></pre>
<script>
window.addEventListener("load", function () {{
  var out = [];
  document.querySelectorAll("iframe").forEach(function (f) {{
    var d = f.contentDocument, prices = [];
    var walker = d.createTreeWalker(d.body, NodeFilter.SHOW_TEXT);
    while (walker.nextNode()) {{
      var node = walker.currentNode;
      if (node.textContent.indexOf("\u20ac") < 0) continue;
      var range = d.createRange();
      range.selectNodeContents(node);
      var box = range.getBoundingClientRect();
      if (box.width > 0 && box.height > 0)
        prices.push({{text: node.textContent.trim(), left: box.left, right: box.right}});
    }}
    out.push({{file: f.dataset.file, width: f.clientWidth, prices: prices,
               scroll: d.documentElement.scrollWidth, styles: d.querySelectorAll("style").length}});
  }});
  document.getElementById("result").textContent = JSON.stringify(out);
}});
</script></body></html>"""


def test_without_style_every_email_fits_a_375px_phone_and_shows_its_prices(tmp_path, mailflow):
    """What Outlook for Windows, Thunderbird and the French ISPs' webmails do with
    <style> and @media, as caniemail.com reports it: drop them. Every template in every
    language, with all the service content and with the longest sample order, keeps its
    inlined styles only, and must still fit a phone without sideways scroll, every price in
    view."""
    from mailflow.render.compose import Composer
    from mailflow.render.samples import varied_orders

    assert mailflow("init", tmp_path / "shop").exit_code == 0
    path = tmp_path / "shop" / "rules.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("\nsender:", CONTENT + "\nsender:", 1), encoding="utf-8")
    config = load_config(path)
    composer = Composer(config, secret=b"browser")
    out = tmp_path / "nostyle"
    out.mkdir()
    expected: dict[str, str | None] = {}
    for name in template_names(config):
        target = resolve(config, name)
        for locale in template_locales(config, name):
            order, cart, customer = sample_subject(target.trigger, locale)
            cases = [("sample", order, cart)]
            if order is not None:
                longest = dict(varied_orders(locale))["a long name"]
                cases.append(("long", {**longest, "status": order["status"]}, None))
            for label, o, c in cases:
                message = composer.message(
                    key=f"browser:{name}", rule=target.rule, template=target.template,
                    marketing=target.marketing, order=o, cart=c, customer=customer,
                    to="camille@example.com", now=NOW, locale=locale)
                file = f"{name}.{locale}.{label}.html"
                assert "<style" in message.rendered.html
                (out / file).write_text(STYLE.sub("", message.rendered.html), encoding="utf-8")
                amount = (o or c or {}).get("total")
                expected[file] = Formatter(locale, "EUR", UTC).money(amount) if amount else None
    frames = "\n".join(f'<iframe data-file="{f}" src="{f}" style="width:375px;height:400px;'
                       f'border:0;display:block"></iframe>' for f in expected)
    probe = out / "probe.html"
    probe.write_text(PHONE_PROBE.format(frames=frames), encoding="utf-8")
    dom = chromium("--window-size=1280,900", "--virtual-time-budget=10000", "--dump-dom",
                   probe.as_uri(), profile=tmp_path / "profile")
    match = re.search(r'<pre id="result">(.*?)</pre>', dom, re.S)
    assert match and match.group(1), f"the probe page did not report: {dom[-500:]}"
    results = json.loads(html.unescape(match.group(1)))
    assert len(results) == len(expected) > 50
    for r in results:
        where = f"{r['file']} without <style> at {r['width']} px"
        assert r["width"] == 375 and r["styles"] == 0, where
        assert r["scroll"] <= 375, f"{where} scrolls sideways ({r['scroll']} px wide)"
        for price in r["prices"]:
            assert price["left"] >= 0 and price["right"] <= 375, f"{where}: {price} cut off"
        total = expected[r["file"]]
        if total:
            shown = [p["text"].replace("\xa0", " ") for p in r["prices"]]
            assert any(total.replace("\xa0", " ") in p for p in shown), (where, total, shown)


def test_the_layout_has_no_fixed_width_over_320px_outside_outlooks_own_tables():
    layout = (Path(__file__).parent.parent / "mailflow" / "data" / "templates")
    for file in sorted(layout.glob("*.html")):
        text = re.sub(r"<!--\[if mso\]>.*?<!\[endif\]-->", "", file.read_text(encoding="utf-8"),
                      flags=re.S)
        for value in re.findall(r"""(?<![-\w])width\s*[:=]\s*["']?(\d+)(?:px)?""", text):
            assert int(value) <= 320, f"{file.name}: a fixed width of {value} px"
        assert "@media" not in text or file.name == "_layout.html", file.name
