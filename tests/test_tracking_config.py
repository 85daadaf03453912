"""`tracking:` in rules.yaml: its defaults, and a bad value named by its line."""

from __future__ import annotations

from datetime import timedelta

import pytest

from mailflow.config import load_config
from mailflow.tracking import tracking_problems

BASE = """\
shop:
  url: https://shop.example
sender:
  from: Shop <hi@shop.example>
rules:
  - name: confirmation
    on: order.placed
    template: order_confirmation
"""


@pytest.fixture
def project(mailflow):
    mailflow("init", mailflow.folder / "p")
    mailflow.config = mailflow.folder / "p" / "rules.yaml"
    return mailflow


def test_without_tracking_nothing_is_tracked(project):
    project.config.write_text(BASE)
    tracking = load_config(project.config).tracking
    assert not tracking.enabled
    assert not tracking.tracks("marketing") and not tracking.tracks("transactional")


def test_tracking_defaults_track_marketing_only_and_no_opens(project):
    project.config.write_text(BASE + "tracking:\n  url: https://shop.example/mf/\n")
    tracking = load_config(project.config).tracking
    assert tracking.url == "https://shop.example/mf"
    assert tracking.tracks("marketing") and not tracking.tracks("transactional")
    assert tracking.opens is False
    assert tracking.attribution.after_click == timedelta(days=5)
    assert tracking.attribution.after_receiving == timedelta(days=1)


def test_every_tracking_key_is_read(project):
    project.config.write_text(BASE + "tracking:\n  url: https://shop.example/mf\n  opens: true\n"
                              "  transactional: true\n  attribution:\n    after_click: 7d\n"
                              "    after_receiving: 12h\n")
    tracking = load_config(project.config).tracking
    assert tracking.opens and tracking.tracks("transactional")
    assert tracking.attribution.after_click == timedelta(days=7)
    assert tracking.attribution.after_receiving == timedelta(hours=12)


@pytest.mark.parametrize(("text", "expected"), [
    ("tracking:\n  urls: https://x.example\n",
     "rules.yaml:10: unknown key 'urls' in tracking (did you mean 'url'?)"),
    ("tracking:\n  url: shop.example/mf\n", "rules.yaml:10: tracking.url 'shop.example/mf' must be"),
    ("tracking:\n  url: https://shop.example/mf?x=1\n", "rules.yaml:10: tracking.url"),
    ("tracking:\n  url: https://shop.example\n  opens: yes please\n",
     "rules.yaml:11: tracking.opens is true or false"),
    ("tracking:\n  url: https://shop.example\n  transactional: 1\n",
     "rules.yaml:11: tracking.transactional is true or false"),
    ("tracking:\n  attribution:\n    after_click: five days\n",
     "rules.yaml:11: tracking.attribution.after_click: bad duration 'five days'"),
    ("tracking:\n  attribution:\n    after_recieving: 1d\n",
     "rules.yaml:11: unknown key 'after_recieving' in tracking.attribution (did you mean"
     " 'after_receiving'?)"),
])
def test_a_bad_tracking_key_names_its_line(project, text, expected):
    project.config.write_text(BASE + text)
    result = project("check")
    assert result.exit_code == 2
    assert expected in result.stderr, result.stderr
    assert result.stderr.count("\n") == 1


def test_check_names_tracking_keys_that_do_nothing_and_clicks_in_clear_text(project):
    """What `check` adds to its problems (rendering every template is left out: it is slow)."""
    def problems(text: str) -> list[str]:
        project.config.write_text(BASE + text)
        return tracking_problems(load_config(project.config).tracking, "rules.yaml")

    assert problems("tracking:\n  url: https://shop.example/mf\n  opens: false\n") == []
    assert problems("tracking:\n  opens: true\n") == [
        "rules.yaml:10: tracking.opens does nothing without tracking.url (the public address"
        " of `mailflow serve`)"]
    [plain] = problems("tracking:\n  url: http://shop.example/mf\n")
    assert plain.startswith("rules.yaml:10: tracking.url is plain http")
    assert problems("tracking:\n  url: http://localhost:8080/mf\n") == []


def test_the_starter_shows_tracking_commented_out_and_tracks_nothing(project):
    text = project.config.read_text()
    assert "# tracking:\n#   url: https://boutique.example/mf\n" in text
    assert not load_config(project.config).tracking.enabled
