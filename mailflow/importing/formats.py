"""Which adapter reads a file: detected from the CSV header or the JSON shape, or forced."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from mailflow.errors import NotAnExport, UsageError
from mailflow.importing import canonical, catalogue, mapping, shopify, woocommerce
from mailflow.importing.adapter import Adapter, ParseContext
from mailflow.importing.source import CsvTable, JsonDocument, SourceFile, open_csv, open_json
from mailflow.records import KINDS, Record, Rejected

ADAPTERS: dict[str, Adapter] = {
    "mailflow": canonical,
    "shopify": shopify,
    "woocommerce": woocommerce,
}
FORMAT_NAMES = (*ADAPTERS, "mapping")


@dataclass
class OpenedExport:
    format: str
    kind: str
    records: Callable[[ParseContext], Iterator[Record | Rejected]]
    close: Callable[[], None]
    bytes_read: Callable[[], int]
    rows_read: Callable[[], int] | None = None  # CSV data rows; None: one per record
    warnings: Callable[[], list[str]] = list  # what reading the file itself found


def open_export(source: SourceFile, *, fmt: str | None, kind: str | None,
                mapping_path: Path | None) -> OpenedExport:
    """Open the file with the adapter that reads it; NotAnExport if none does."""
    if fmt is not None and fmt not in FORMAT_NAMES:
        raise UsageError(f"unknown --format {fmt!r}: use one of {', '.join(FORMAT_NAMES)}")
    if kind is not None and kind not in KINDS:
        raise UsageError(f"unknown --kind {kind!r}: use one of {', '.join(KINDS)}")
    if mapping_path is not None or fmt == "mapping":
        if mapping_path is None:
            raise UsageError("--format mapping needs --mapping MAP.yaml")
        spec = mapping.load(mapping_path)
        table = _csv(source)
        kind = kind or spec.kind
        return _csv_export("mapping", kind, table, lambda ctx: mapping.read_csv(table, spec, ctx))
    candidates = [ADAPTERS[fmt]] if fmt else list(ADAPTERS.values())
    if kind == "products" and source.looks_like_json:
        raise NotAnExport(_not_products(source))
    if source.looks_like_json:
        doc = open_json(source)
        for adapter in candidates:
            found = adapter.detect_json(doc.data)
            if found:
                chosen = _kind(kind, found, source, adapter)
                return OpenedExport(_name(adapter), chosen, partial(adapter.read_json, doc, chosen),
                                    lambda: None, lambda: source.size)
        if kind is not None and kind in canonical.PEOPLE_KINDS:
            return OpenedExport("mailflow", kind, partial(canonical.read_json, doc, kind),
                                lambda: None, lambda: source.size)
        raise NotAnExport(_unknown_shape(source, fmt, "JSON"))
    table = _csv(source)
    products = catalogue.detect_csv(table.header)
    if products is not None and fmt in (None, products):
        if kind not in (None, "products"):
            table.close()
            raise NotAnExport(f"{source.name}: --kind {kind} does not fit this file (a"
                              f" {products} products export)")
        return _csv_export(products, "products", table,
                           partial(catalogue.read_csv, table, products))
    if kind == "products":
        table.close()
        raise NotAnExport(_not_products(source))
    for adapter in candidates:
        found = adapter.detect_csv(table.header)
        if found and (kind not in canonical.PEOPLE_KINDS or found == kind):
            chosen = _kind(kind, found, source, adapter)
            return _csv_export(_name(adapter), chosen, table,
                               partial(adapter.read_csv, table, chosen))
    if kind is not None and kind in canonical.PEOPLE_KINDS:  # any file with an e-mail column
        return _csv_export("mailflow", kind, table, partial(canonical.read_csv, table, kind))
    table.close()
    raise NotAnExport(_unknown_shape(source, fmt, "CSV"))


def _csv(source: SourceFile) -> CsvTable:
    return open_csv(source)


def _csv_export(fmt: str, kind: str, table: CsvTable,
                records: Callable[[ParseContext], Iterator[Record | Rejected]]) -> OpenedExport:
    return OpenedExport(fmt, kind, records, table.close, lambda: table.bytes_read,
                        lambda: table.rows_read, lambda: table.warnings)


def _kind(forced: str | None, detected: str, source: SourceFile, adapter: Adapter) -> str:
    """The adapter's detection names the kind; --kind may only choose where the adapter
    cannot tell orders from carts by itself (Shopify's two CSV exports look alike)."""
    if forced is None or forced == detected:
        return detected
    if {forced, detected} == {"orders", "carts"} and adapter.KIND_FROM_OPTION:
        return forced
    raise NotAnExport(f"{source.name}: --kind {forced} does not fit this file ({detected})")


def _not_products(source: SourceFile) -> str:
    return (f"{source.name}: not a products export (Shopify's or WooCommerce's products CSV,"
            " or mailflow's sku,name,url,image,price,currency,available): nothing imported;"
            " for another layout, describe its columns with --mapping MAP.yaml (kind: products)")


def _name(adapter: Adapter) -> str:
    return next(name for name, module in ADAPTERS.items() if module is adapter)


def _unknown_shape(source: SourceFile, fmt: str | None, what: str) -> str:
    expected = f"a {fmt} export" if fmt else "a Shopify, WooCommerce or mailflow export"
    return (f"{source.name}: this {what} is not {expected}; for another shop's export,"
            " describe its columns with --mapping MAP.yaml")


__all__ = ["FORMAT_NAMES", "JsonDocument", "OpenedExport", "ParseContext", "open_export"]
