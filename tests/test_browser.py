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
from mailflow.render.samples import sample_subject

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
