"""Reading an export file: bytes → text → CSV rows or a JSON document.

A first pass hashes the file and settles its encoding (UTF-8 with or without BOM,
UTF-16 with BOM as Excel's "Unicode text", else Windows-1252) without holding it in
memory; a second pass streams rows. Anything that is not a text export raises
NotAnExport before a single row is read.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mailflow.errors import MailflowError, NotAnExport

_CHUNK = 1 << 20
_BLANK = b" \t\r\n\x0b\x0c\xef\xbb\xbf"
_BLANK_TEXT = "\ufeff \t\r\n\x0b\x0c"
_DELIMITERS = (",", ";", "\t", "|")
_CP1252_UNDEFINED = (b"\x81", b"\x8d", b"\x8f", b"\x90", b"\x9d")
csv.field_size_limit(min(sys.maxsize, 1 << 30))


@dataclass
class SourceFile:
    path: Path
    name: str  # as the user wrote it, for messages
    sha256: str
    size: int
    encoding: str
    looks_like_json: bool


def file_stat(path: Path) -> tuple[int, int, int, int, int] | None:
    """(size, mtime_ns, ctime_ns, inode, device): what tells, without reading the file,
    that it has not changed since it was imported; None if it cannot be stat'ed."""
    try:
        found = path.stat()
    except OSError:
        return None
    return (found.st_size, found.st_mtime_ns, found.st_ctime_ns, found.st_ino, found.st_dev)


def open_source(path: Path | str) -> SourceFile:
    """Hash the file and decide its encoding; NotAnExport if it is empty or binary."""
    path = Path(path)
    name = str(path)
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        raise MailflowError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise MailflowError(f"{name}: is a folder, not an export file") from None
    except OSError as exc:
        raise MailflowError(f"{name}: cannot read: {exc.strerror}") from None
    digest = hashlib.sha256()
    size = 0
    first = b""
    utf8: codecs.IncrementalDecoder | None = codecs.getincrementaldecoder("utf-8")()
    cp1252 = True  # stateless, one byte a character: only five bytes are not Windows-1252
    utf16 = False
    blank = True
    with handle:
        while chunk := handle.read(_CHUNK):
            if not first:
                first = chunk[:4096]
                utf16 = chunk.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
            digest.update(chunk)
            size += len(chunk)
            if utf16:
                if blank:
                    codec = "utf-16" if size == len(chunk) else _utf16_codec(first)
                    blank = not chunk.decode(codec, errors="ignore").strip(_BLANK_TEXT)
                continue
            if blank:
                blank = not chunk.strip(_BLANK)
            if b"\x00" in chunk:
                raise NotAnExport(f"{name}: binary data (NUL bytes): this is not a shop export")
            # most chunks of an export are ASCII: nothing to decode while no UTF-8 sequence
            # is left open across the chunk boundary
            if utf8 is not None and not (chunk.isascii() and not utf8.getstate()[0]):
                try:
                    utf8.decode(chunk)
                except UnicodeDecodeError:
                    utf8 = None
            # five memchr scans: a character class regex over each byte was 0.5 s a 200 MB file
            cp1252 = cp1252 and not any(byte in chunk for byte in _CP1252_UNDEFINED)
    if blank:
        what = "empty" if size == 0 else "blank (only spaces and line breaks)"
        raise NotAnExport(f"{name}: the file is {what}: export again from the shop")
    if utf16:
        encoding = "utf-16"
    elif utf8 is not None:
        try:
            utf8.decode(b"", final=True)
            encoding = "utf-8-sig"
        except UnicodeDecodeError:
            encoding = "cp1252" if cp1252 else ""
    elif cp1252:
        encoding = "cp1252"
    else:
        encoding = ""
    if not encoding:
        raise NotAnExport(f"{name}: not text (neither UTF-8 nor Windows-1252): not a shop export")
    head = first.decode(encoding, errors="ignore")
    looks_like_json = head.lstrip(_BLANK_TEXT)[:1] in ("{", "[")
    return SourceFile(path, name, digest.hexdigest(), size, encoding, looks_like_json)


def _utf16_codec(first: bytes) -> str:
    return "utf-16-le" if first.startswith(codecs.BOM_UTF16_LE) else "utf-16-be"


def _sniff_delimiter(header_line: str) -> str:
    counts = dict.fromkeys(_DELIMITERS, 0)
    quoted = False
    for char in header_line:
        if char == '"':
            quoted = not quoted
        elif not quoted and char in counts:
            counts[char] += 1
    best = max(_DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


@dataclass
class CsvTable:
    """A CSV export: its header and a stream of (line number, cells) for each record."""

    source: SourceFile
    header: list[str]
    delimiter: str
    _handle: io.BufferedReader
    _text: io.TextIOWrapper
    _reader: Any
    rows_read: int = 0
    _header_end: int = field(default=0)
    warnings: list[str] = field(default_factory=list)  # imported, but a human should know

    @property
    def bytes_read(self) -> int:
        return self._handle.tell()

    def rows(self) -> Iterator[tuple[int, list[str]]]:
        reader = self._reader
        previous_end = self._header_end
        twins = _twins(self.header)
        try:
            for cells in reader:
                start = previous_end + 1
                previous_end = reader.line_num
                if not cells or not any(cells):
                    continue
                if twins:
                    self._same_twins(twins, cells, start)
                self.rows_read += 1
                yield start, cells
            for positions in twins:
                self.warnings.append(f"the column {self.header[positions[0]]!r} appears"
                                     f" {len(positions)} times (columns"
                                     f" {', '.join(str(i + 1) for i in positions)}), with the"
                                     " same values on every row: read once")
        except csv.Error as exc:
            raise NotAnExport(f"{self.source.name}:{previous_end + 1}: {_csv_reason(exc)}") from None
        except UnicodeDecodeError:
            raise NotAnExport(f"{self.source.name}:{previous_end + 1}: not valid"
                              f" {self.source.encoding} text: save the export again") from None

    def _same_twins(self, twins: list[list[int]], cells: list[str], line: int) -> None:
        """A column named twice is refused unless its cells agree: which one to trust?"""
        width = len(cells)
        for positions in twins:
            values = {cells[i].strip() if i < width else "" for i in positions}
            if len(values) > 1:
                raise NotAnExport(
                    f"{self.source.name}:{line}: the column {self.header[positions[0]]!r}"
                    f" appears {len(positions)} times (columns"
                    f" {', '.join(str(i + 1) for i in positions)}) with different values:"
                    " mailflow cannot tell which to read; remove or rename the others")

    def close(self) -> None:
        self._text.close()


def _twins(header: list[str]) -> list[list[int]]:
    """Positions of each non-empty column name the header holds more than once."""
    from mailflow.importing.columns import normalize

    seen: dict[str, list[int]] = {}
    for i, name in enumerate(header):
        key = normalize(name)
        if key:
            seen.setdefault(key, []).append(i)
    return [positions for positions in seen.values() if len(positions) > 1]


def _csv_reason(exc: csv.Error) -> str:
    reason = str(exc)
    if "unexpected end of data" in reason or "EOF" in reason:
        return "a quoted cell is never closed (unterminated quote)"
    if "expected after" in reason:
        return ("a quoted cell goes on after its closing quote: a quote inside a quoted cell"
                ' must be doubled ("")')
    return reason


def open_csv(source: SourceFile) -> CsvTable:
    handle = source.path.open("rb")
    text = io.TextIOWrapper(handle, encoding=source.encoding, newline="")
    header: list[str] = []
    try:
        first_line = text.readline()
        while first_line and not first_line.strip("\ufeff\r\n\t ,;"):
            first_line = text.readline()
        delimiter = _sniff_delimiter(first_line)
        text.seek(0)
        reader = csv.reader(text, delimiter=delimiter, strict=True)
        for cells in reader:
            if any(c.strip() for c in cells):
                header = [c.strip().lstrip("\ufeff").strip() for c in cells]
                break
    except csv.Error as exc:
        text.close()
        raise NotAnExport(f"{source.name}:1: unreadable header: {_csv_reason(exc)}") from None
    except UnicodeDecodeError:
        text.close()
        raise NotAnExport(f"{source.name}:1: not valid {source.encoding} text:"
                          " save the export again") from None
    if not header:
        text.close()
        raise NotAnExport(f"{source.name}: no header row: not a shop export")
    return CsvTable(source, header, delimiter, handle, text, reader, _header_end=reader.line_num)


@dataclass
class JsonDocument:
    source: SourceFile
    data: Any
    text: str

    _lines: dict[str | None, list[int]] = field(default_factory=dict)

    def item_line(self, key: str | None, index: int) -> int:
        """The line where item `index` of the array (top level, or under `key`) begins."""
        if key not in self._lines:
            lines, line, previous = [], 1, 0
            for offset in _array_item_offsets(self.text, key):
                line += self.text.count("\n", previous, offset)
                lines.append(line)
                previous = offset
            self._lines[key] = lines
        lines = self._lines[key]
        return lines[index] if index < len(lines) else 1


_WS = re.compile(r"[\s,]*")


def _array_item_offsets(text: str, key: str | None) -> list[int]:
    if key is None:
        begin = text.find("[")
    else:
        match = re.search('"' + re.escape(key) + r'"\s*:\s*\[', text)
        begin = match.end() - 1 if match else -1
    if begin < 0:
        return []
    decoder = json.JSONDecoder()
    offsets: list[int] = []
    index = begin + 1
    while True:
        blank = _WS.match(text, index)  # [\s,]* always matches
        index = blank.end() if blank else index
        if index >= len(text) or text[index] == "]":
            return offsets
        offsets.append(index)
        try:
            _, index = decoder.raw_decode(text, index)
        except ValueError:
            return offsets


def open_json(source: SourceFile) -> JsonDocument:
    try:
        text = source.path.read_text(encoding=source.encoding)
        data = json.loads(text)
    except RecursionError:
        raise NotAnExport(f"{source.name}: not valid JSON: nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:
        if isinstance(exc, json.JSONDecodeError):
            raise NotAnExport(f"{source.name}:{exc.lineno}: not valid JSON: {exc.msg}") from None
        raise NotAnExport(f"{source.name}: not valid JSON: {exc}") from None
    return JsonDocument(source, data, text)
