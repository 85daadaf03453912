"""`--mapping MAP.yaml`: any other shop's CSV, its columns renamed onto the canonical fields.

```yaml
kind: orders                 # or carts, customers, unsubscribes, products
columns:                     # canonical field: the export's column header
  order_id: Référence
  email: E-mail
statuses:                    # the export's status label: mailflow's status
  Paiement accepté: paid
defaults:                    # a constant for a field the export lacks or leaves empty
  currency: EUR
```
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from difflib import get_close_matches
from pathlib import Path

import yaml

from mailflow.errors import ConfigError, NotAnExport, RowRejected
from mailflow.importing import build, canonical, catalogue
from mailflow.importing.columns import Columns, normalize
from mailflow.importing.source import CsvTable
from mailflow.records import KINDS, STATUSES, Record, Rejected
from mailflow.yamlfile import compose_yaml


@dataclass
class MappingSpec:
    path: str
    kind: str
    columns: dict[str, str]
    statuses: dict[str, str] = field(default_factory=dict)
    defaults: dict[str, str] = field(default_factory=dict)

    def status(self, label: str) -> str:
        mapped = self.statuses.get(normalize(label))
        if mapped is not None:
            return mapped
        try:
            return build.vocabulary(label)
        except RowRejected:
            raise RowRejected(f"status {label!r} is not in {self.path} under statuses:") from None


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _suggest(word: str, choices: tuple[str, ...] | list[str]) -> str:
    close = get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else f" (one of: {', '.join(choices)})"


def load(path: Path) -> MappingSpec:
    name = str(path)
    root = compose_yaml(path, name)
    if not isinstance(root, yaml.MappingNode):
        raise ConfigError(f"{name}:1: a mapping file needs the keys kind, columns, statuses")
    kind, columns, statuses, defaults = "orders", {}, {}, {}
    for key_node, value_node in root.value:
        key = key_node.value
        if key == "kind":
            kind = value_node.value
            if kind not in KINDS:
                raise ConfigError(f"{name}:{_line(value_node)}: unknown kind {kind!r}"
                                  + _suggest(kind, KINDS))
        elif key == "columns":
            columns = _pairs(name, value_node)
        elif key == "statuses":
            statuses = _pairs(name, value_node)
        elif key == "defaults":
            defaults = _pairs(name, value_node)
        else:
            raise ConfigError(f"{name}:{_line(key_node)}: unknown key {key!r}"
                              + _suggest(key, ("kind", "columns", "statuses", "defaults")))
    fields = canonical.FIELDS_BY_KIND[kind]
    for canonical_field, (_, line) in [*columns.items(), *defaults.items()]:
        if canonical_field not in fields:
            raise ConfigError(f"{name}:{line}: {canonical_field!r} is not a field of {kind}"
                              + _suggest(canonical_field, fields))
    if "status" in defaults and defaults["status"][0] not in STATUSES:
        status, line = defaults["status"]
        raise ConfigError(f"{name}:{line}: default status {status!r} is not mailflow's"
                          + _suggest(status, STATUSES))
    for label, (status, line) in statuses.items():
        if status not in STATUSES:
            raise ConfigError(f"{name}:{line}: status {label!r} maps to unknown {status!r}"
                              + _suggest(status, STATUSES))
    return MappingSpec(name, kind, {k: v for k, (v, _) in columns.items()},
                       {normalize(k): v for k, (v, _) in statuses.items()},
                       {k: v for k, (v, _) in defaults.items()})


def _pairs(name: str, node: yaml.Node) -> dict[str, tuple[str, int]]:
    if not isinstance(node, yaml.MappingNode):
        raise ConfigError(f"{name}:{_line(node)}: expected `name: value` pairs here")
    pairs = {}
    for key_node, value_node in node.value:
        if not isinstance(value_node, yaml.ScalarNode):
            raise ConfigError(f"{name}:{_line(value_node)}: {key_node.value!r} needs one value")
        pairs[str(key_node.value)] = (str(value_node.value), _line(key_node))
    return pairs


def read_csv(table: CsvTable, spec: MappingSpec, ctx) -> Iterator[Record | Rejected]:
    columns = Columns(table.header, {f: (header,) for f, header in spec.columns.items()})
    missing = [spec.columns[f] for f in spec.columns if f not in columns.at]
    if missing:
        raise NotAnExport(f"{table.source.name}:1: no column {missing[0]!r}, which {spec.path}"
                          " names: is this the right export for this mapping?")
    if spec.kind == "products":
        yield from catalogue.read_rows(table, columns, spec.defaults)
        return
    if spec.kind in canonical.PEOPLE_KINDS:
        for line, row in table.rows():
            try:
                yield canonical.build_person(spec.kind, columns.reader(row), line, ctx)
            except RowRejected as exc:
                yield Rejected(line, exc.reason)
        return
    yield from canonical.read_grouped_csv(table, spec.kind, columns, ctx, spec.status,
                                          spec.defaults)
