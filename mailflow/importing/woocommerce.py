"""woocommerce exports (to be written)."""

from __future__ import annotations


def detect_csv(header):
    return None


def detect_json(data):
    return None


def read_csv(table, kind, ctx):
    return iter(())


def read_json(doc, kind, ctx):
    return iter(())
