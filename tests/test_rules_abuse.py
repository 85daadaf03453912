"""A hostile or broken rules.yaml (and mapping file, read the same way): every command refuses
it with `rules.yaml:LINE: what` and exit 2, at once and in bounded memory, and changes
nothing. The hypothesis test bends a valid file every way YAML allows."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from test_import_property import _JSON_ANY, PROPERTY

BASE = """\
shop:
  name: Boutique Test
  url: https://shop-test.example
  timezone: Europe/Paris
sender:
  from: Shop <hi@shop-test.example>
delivery:
  transport: file
  dir: outbox
rules:
  - name: confirmation
    on: order.placed
    template: order_confirmation
"""
RULE_LINE = 11  # `- name: confirmation`
BOMB = 'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n' + "".join(
    f"{chr(97 + i)}: &{chr(97 + i)} [{', '.join([f'*{chr(96 + i)}'] * 9)}]\n" for i in range(1, 9))


def _rule(extra: str) -> str:
    return BASE + "".join(f"    {line}\n" for line in extra.splitlines())


CASES = [
    ("alias-bomb", BOMB + BASE.replace("  name: Boutique Test", "  name: *i"),
     r"rules\.yaml:\d+: its aliases expand to more than 20,000 values"),
    ("recursive-alias", BASE.replace("rules:\n", "rules: &r\n  - *r\n") .split("  - name")[0],
     r"rules\.yaml:\d+: an alias refers to the value that holds it"),
    ("after-overflow", _rule("after: 99999999999999d"),
     r"rules\.yaml:14: rule confirmation: after: duration '99999999999999d' is too long"),
    ("after-weeks", _rule("after: 100000000w"),
     r"rules\.yaml:14: rule confirmation: after: duration '100000000w' is too long"),
    ("after-centuries", _rule("after: 5000w"),
     r"rules\.yaml:14: rule confirmation: after: '5000w' is longer than 3660d"),
    ("cap-overflow", _rule("cap: 1 per 99999999999999d"),
     r"rules\.yaml:14: rule confirmation: cap: duration '99999999999999d' is too long"),
    ("quiet-minutes", _rule('quiet_hours: "21:99-08:00"'),
     r"rules\.yaml:14: rule confirmation: quiet_hours: write it like"),
    ("quiet-empty", _rule('quiet_hours: "08:00-08:00"'),
     r"rules\.yaml:14: rule confirmation: quiet_hours starts and ends at the same minute"),
    ("template-path", BASE.replace("template: order_confirmation", "template: /etc/hostname"),
     r"rules\.yaml:13: rule confirmation: template '/etc/hostname': the name of an e-mail"),
    ("template-up", BASE.replace("template: order_confirmation", "template: ../../etc/passwd"),
     r"rules\.yaml:13: rule confirmation: template '\.\./\.\./etc/passwd'"),
    ("smtp-timeout-0", BASE.replace("  dir: outbox\n", "  dir: outbox\n  smtp: {timeout: 0s}\n"),
     r"rules\.yaml:10: delivery\.smtp\.timeout: '0s' is shorter than 1s"),
    ("name-newline", BASE.replace("name: confirmation", 'name: "confirmation\\n"'),
     r"rules\.yaml:11: rule name 'confirmation\\n': use lower-case letters"),
    ("name-bell", BASE.replace("name: confirmation", 'name: "confir\\amation"'),
     r"rules\.yaml:11: rule name 'confir\\x07mation'"),
]
BYTES = [
    ("cp1252", BASE.replace("Boutique Test", "Boutique Zoé").encode("cp1252"),
     r"rules\.yaml:2: not UTF-8 text: byte 0xe9 \(Windows-1252"),
    ("utf-16", BASE.encode("utf-16"), r"rules\.yaml:1: UTF-16 text: save the file as UTF-8"),
    ("big-scalar", BASE.replace("Boutique Test", "x" * (2 << 20)).encode(),
     r"rules\.yaml:1: the file is 2\.1 MB, more than a rules or mapping file ever needs"),
]
COMMANDS = [("check",), ("status",), ("send", "--dry-run"), ("log",)]


@pytest.fixture
def project(mailflow):
    mailflow("init", mailflow.folder / "p")
    mailflow.config = mailflow.folder / "p" / "rules.yaml"
    return mailflow


def _refused_everywhere(project, expected: str) -> None:
    before = project.dump()
    for command in COMMANDS:
        result = project(*command)
        assert result.exit_code == 2, (command, result.stderr)
        (line,) = result.stderr.splitlines()
        assert re.match(f"error: {expected}", line), (command, line)
    assert project.dump() == before


@pytest.mark.parametrize("text, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_hostile_rules_yaml_is_refused_by_every_command_with_its_line(project, text, expected):
    assert project("status").exit_code == 0  # the store exists: refusals must leave it alone
    project.config.write_text(text, encoding="utf-8")
    _refused_everywhere(project, expected)


@pytest.mark.parametrize("data, expected", [c[1:] for c in BYTES], ids=[c[0] for c in BYTES])
def test_a_rules_yaml_not_in_utf8_or_too_big_is_refused_with_its_line(project, data, expected):
    assert project("status").exit_code == 0
    project.config.write_bytes(data)
    _refused_everywhere(project, expected)


def test_a_mapping_file_is_read_with_the_same_limits(mailflow):
    export = mailflow.write("orders.csv", "Ref,Mail,Date\n1,a@example.com,2026-03-01\n")
    mapping = mailflow.write("map.yaml", BOMB + "columns: {order_id: *i}\n")
    result = mailflow("import", export, "--mapping", mapping)
    assert result.exit_code == 2
    assert re.match(rf"error: {re.escape(str(mapping))}:\d+: its aliases expand to more than 20,000",
                    result.stderr.splitlines()[-1]), result.stderr


_HOSTILE = st.sampled_from([
    "0", "0s", "-1d", "99999999999999d", "100000000w", "1 per 0s", "25:00-08:00", "8:00-8:00",
    "/etc/hostname", "../x", "order_confirmation.html", "a\x07b", "\u2028", "ÿ", "*", "&a",
    "{{ x }}", "{% raw %}", "order.placed", "cart.abandoned", "marketing", "yes", "~", "",
])
_VALUE = st.one_of(_JSON_ANY, _HOSTILE)


_STARTER_SOURCES = sorted((Path(__file__).parent.parent / "mailflow" / "data" / "sources").glob("*.yaml"))


@st.composite
def bent_rules(draw: st.DrawFn) -> str:
    """BASE, maybe with a starter's API source, an unsubscribe link and an offer, with some
    values (or keys) replaced by anything YAML holds."""
    document = yaml.safe_load(BASE)
    rule = document["rules"][0]
    if draw(st.booleans()):
        chosen = draw(st.sampled_from(_STARTER_SOURCES))
        document["sources"] = yaml.safe_load(chosen.read_text(encoding="utf-8"))["sources"]
    if draw(st.booleans()):
        document["unsubscribe"] = {"url": "https://shop-test.example/u?token={token}"}
    if draw(st.booleans()):
        rule["offer"] = {"pool": "welcome", "expires_after": "30d", "warn_below": 5}
    for _ in range(draw(st.integers(1, 4))):
        section = draw(st.sampled_from(["shop", "sender", "delivery", "rule", "top", "source",
                                        "unsubscribe", "offer"]))
        sources = document.get("sources")  # a value already, maybe: `top` may replace it
        source = sources[0] if isinstance(sources, list) and sources else None
        target = {"rule": rule, "top": document, "offer": rule.get("offer"),
                  "source": source}.get(section) or document.get(section)
        if not isinstance(target, dict):  # replaced by a value already, or not there
            continue
        keys = {"rule": ["name", "on", "template", "after", "cap", "where", "quiet_hours",
                         "expire_after", "category", "subject", "skip_if", "enabled", "offer"],
                "top": ["shop", "rules", "delivery", "unsubscribe", "sources"]}.get(
            section, [*sorted(map(str, target)), "timezone", "rate_limit", "smtp", "connections",
                      "platform", "url", "pool", "code", "text"])
        target[draw(st.sampled_from(keys))] = draw(_VALUE)
    return yaml.safe_dump(document, allow_unicode=draw(st.booleans()))


@settings(PROPERTY, max_examples=8)  # each runs four commands: about 2 s on a quiet machine
@given(text=bent_rules())
def test_a_bent_rules_yaml_is_accepted_or_refused_in_one_line_and_changes_nothing(text):
    import tempfile

    from conftest import Mailflow

    with tempfile.TemporaryDirectory() as folder:
        project = Mailflow(Path(folder))
        assert project("init", project.folder / "p").exit_code == 0
        project.config = project.folder / "p" / "rules.yaml"
        assert project("status").exit_code == 0
        before = project.dump()
        project.config.write_text(text, encoding="utf-8")
        for command in (("check",), ("send", "--dry-run", "--now", "2026-03-01T10:00")):
            result = project(*command)
            assert result.exit_code in (0, 1, 2), result.stderr
            assert "internal error" not in result.stderr and "Traceback" not in result.stderr
            if result.exit_code == 2:
                assert re.match(r"error: rules\.yaml(:\d+)?: ", result.stderr.splitlines()[-1]), \
                    result.stderr
        assert project.dump() == before
