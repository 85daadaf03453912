"""Customer data is never markup, never a header, never a link it should not be."""

from __future__ import annotations

import email
import shutil
from email import policy
from pathlib import Path

DEFAULTS = Path(__file__).parent.parent / "mailflow" / "data"

HOSTILE = (
    "order_id,email,first_name,last_name,status,created_at,shipped_at,tracking_number,"
    "tracking_url,carrier,total,line_name,line_quantity,line_price,accepts_marketing\n"
    'X-1,zoe@example.com,Zoé <script>alert(1)</script>,"Martin\r\nBcc: x@evil.example",shipped,'
    "2026-03-01 10:00,2026-03-01 11:00,TRACK1,javascript:alert(document.cookie),"
    "<b>Carrier</b>,10.00,<img src=x onerror=alert(1)>,1,10.00,yes\n"
)


def _project(mailflow, monkeypatch):
    monkeypatch.setenv("MAILFLOW_SECRET", "s")
    mailflow("init", mailflow.folder / "p")
    mailflow.config = mailflow.folder / "p" / "rules.yaml"
    return mailflow.folder / "p"


def test_a_hostile_name_and_tracking_url_stay_text(mailflow, monkeypatch):
    project = _project(mailflow, monkeypatch)
    assert mailflow("import", mailflow.write("o.csv", HOSTILE), "--now", "2026-03-01T11:05"
                    ).exit_code == 0
    result = mailflow("send", "--now", "2026-03-01T11:10", "--json")
    assert result.exit_code == 0, result.stderr
    files = sorted((project / "outbox").glob("*.eml"))
    assert len(files) == 3  # confirmation, shipping and welcome
    for path in files:
        raw = path.read_bytes()
        message = email.message_from_bytes(raw, policy=policy.default)
        assert [a.addr_spec for a in message["To"].addresses] == ["zoe@example.com"]
        assert message["Bcc"] is None and b"\nBcc:" not in raw and b"\r\nBcc:" not in raw
        html = message.get_body(("html",)).get_content()
        assert "<script>" not in html and "&lt;script&gt;" in html
        assert "<img src=x" not in html and "<b>Carrier</b>" not in html
        assert "javascript:" not in html
        text = message.get_body(("plain",)).get_content()
        assert "javascript:" not in text
    shipped = next(p for p in files if p.name.startswith("shipped"))
    html = email.message_from_bytes(shipped.read_bytes(), policy=policy.default) \
        .get_body(("html",)).get_content()
    assert "TRACK1" in html  # the number is shown, the hostile URL is not a link


def test_check_reports_template_problems_with_file_and_line(mailflow, monkeypatch):
    project = _project(mailflow, monkeypatch)
    templates = project / "templates"
    (templates / "order_confirmation.fr.html").write_text(
        '{% extends "_layout.fr.html" %}\n{% block subject %}Merci{% endblock %}\n'
        "{% block body %}\n<p>{{ order.numero }}</p>\n{% endblock %}\n", encoding="utf-8")
    (templates / "order_shipped.fr.html").write_text(
        '{% extends "_layout.fr.html" %}\n{% block body %}<p>x</p>{% endblock %}\n',
        encoding="utf-8")
    (templates / "order_delivered.fr.html").write_text(
        '{% extends "_layout.fr.html" %}\n{% block subject %}Livré{% endblock %}\n'
        '{% block body %}\n<a href="www.boutique.example/avis">avis</a>\n{% endblock %}\n',
        encoding="utf-8")
    layout = (templates / "_layout.fr.html").read_text(encoding="utf-8")
    shutil.copy(templates / "review_request.fr.html", templates / "review_request.fr.bak")
    (templates / "review_request.fr.html").write_text(
        '{% extends "_layout.html" %}\n{% block subject %}Votre avis{% endblock %}\n'
        "{% block body %}<p>Un avis ?</p>{% endblock %}\n", encoding="utf-8")
    result = mailflow("check")
    assert result.exit_code == 1
    problems = result.stderr
    assert "templates/order_confirmation.fr.html:4: 'dict object' has no attribute 'numero'" in problems
    assert "templates/order_shipped.fr.html: no {% block subject %}" in problems
    assert "templates/order_delivered.fr.html:4: relative link 'www.boutique.example/avis'" in problems
    assert "templates/review_request.fr.html: a marketing e-mail without the unsubscribe link" in problems
    assert layout  # the layout itself was not touched
