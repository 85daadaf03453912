"""`mailflow check` renders every template against a partially shipped order too (some lines
shipped, some not), in every language: a template that breaks only on such an order is
found before a real one does. The default "shipped" e-mail, on each of those samples."""

from __future__ import annotations

from pathlib import Path

from mailflow.config import load_config
from mailflow.render.compose import Composer
from mailflow.render.preview import preview_secret
from mailflow.render.samples import NOW, sample_customer, varied_orders

DEFAULTS = Path(__file__).parent.parent / "mailflow" / "data"


def test_check_renders_a_partially_shipped_order_in_every_language(mailflow):
    mailflow("init", mailflow.folder / "p")
    mailflow.config = mailflow.folder / "p" / "rules.yaml"
    templates = mailflow.folder / "p" / "templates"
    for locale in ("fr", "en"):
        (templates / f"parcel_note.{locale}.html").write_text(
            f'{{% extends "_layout.{locale}.html" %}}\n{{% block subject %}}Colis{{% endblock %}}\n'
            "{% block body %}\n{% if order.partially_shipped %}"
            '<p>{{ order.lines | rejectattr("shipped") | map(attribute="name") | join + 1 }}</p>'
            "{% endif %}\n{% endblock %}\n", encoding="utf-8")
    result = mailflow("check")
    assert result.exit_code == 1
    lines = sorted(p for p in result.stderr.splitlines() if "parcel_note" in p)
    assert len(lines) == 2, lines
    for locale, problem in zip(("en", "fr"), lines, strict=True):
        assert problem.startswith(f"templates/parcel_note.{locale}.html:4: TypeError: ")
        assert "(with sample data: partially shipped (the teapot still to come))" in problem
    assert "order_shipped" not in result.stderr  # the default template renders them all


def _shipped(label: str, locale: str) -> tuple[str, str]:
    config = load_config(DEFAULTS / "rules.yaml")
    composer = Composer(config, inliner_name="premailer", secret=preview_secret(config))
    [order] = [o for name, o in varied_orders(locale) if name == label]
    message = composer.message(key="k", rule=None, template="order_shipped", marketing=False,
                               order=order, cart=None, customer=sample_customer(locale),
                               to="camille.martin@example.com", now=NOW, locale=locale)
    return message.subject, message.rendered.text


def test_the_shipped_email_of_the_partially_shipped_sample():
    subject, text = _shipped("partially shipped (the teapot still to come)", "fr")
    assert subject == "Commande #1042 partiellement expédiée"
    assert "Une partie de votre commande est en route ; le reste suivra" in text
    parcel = text.split("Dans ce colis", 1)[1].split("À suivre", 1)[0]
    assert "Mug bleu « Océan »" in parcel and "Théière" not in parcel
    rest = text.split("À suivre", 1)[1].split("Récapitulatif", 1)[0]
    assert "Théière en fonte 0,8 L" in rest and "Mug" not in rest

    subject, text = _shipped("partially shipped (the teapot still to come)", "en")
    assert subject == "Part of order #1042 has shipped"
    assert "Part of your order is on its way; the rest will follow" in text
    assert "Théière" not in text.split("In this parcel", 1)[1].split("Still to come", 1)[0]
    assert "Théière en fonte 0,8 L" in text.split("Still to come", 1)[1].split("Order summary")[0]


def test_the_shipped_email_without_line_facts_is_todays():
    # nothing known of the lines, no partial word from the platform: the usual e-mail
    assert _shipped("shipped, which lines left not known", "fr") == \
        _shipped("shipped with tracking", "fr")
    subject, text = _shipped("shipped with tracking", "fr")
    assert subject == "Commande #1042 expédiée"
    assert "Votre commande est en route !" in text and "Une partie" not in text
    # the platform says partial but not which lines: the whole order, under the partial words
    subject, text = _shipped("partially shipped, which lines not known", "en")
    assert "Part of your order is on its way" in text and "In this parcel" not in text
    summary = text.split("Order summary", 1)[1]
    assert "Mug bleu « Océan »" in summary and "Théière en fonte 0,8 L" in summary
