"""The organisations' CSV files, read row by row with one numbering for every command.

Row 1 is the first data row after the header. Blank rows (every field empty or spaces)
are skipped and not counted, and the line breaks inside a quoted field do not start a
row; SPEC.md section 15.4 fixes this numbering because the issuer's token file names
QUERIES.csv rows by it. ``holder index`` (and its rejects.csv), the requester's jobs,
``issuer issue`` and ``matchkeys`` all read through :func:`read_rows`, so a row number
in any of their messages or outputs means the same row of the same file.

A byte that is not UTF-8 is reported in the row that holds it. Python decodes a text file
in blocks, so a decode error surfaces while the CSV reader is still rows before the bad
byte; the file is therefore decoded with ``surrogateescape`` and each row checked for an
escaped byte. The CSV is parsed strictly: an unterminated quoted field would otherwise
swallow every later row into one field without a word.

Errors name the file and the row, never a value: the rows are personal data.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from blindmatch.vocabulary import BlindmatchError, InputError

_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")  # what surrogateescape makes of a byte that is not UTF-8


def _not_utf8(values: list[str]) -> bool:
    text = "".join(values)
    return not text.isascii() and _ESCAPED_BYTE.search(text) is not None


def _is_blank(values: list[str]) -> bool:
    return not any(value.strip() for value in values)


def _csv_problem(exc: csv.Error) -> str:
    """A CSV error in words; the reader's messages name characters, never field values."""
    if str(exc).startswith("field larger than field limit"):
        return f"a field exceeds the CSV field size limit ({csv.field_size_limit()} characters)"
    return f"not readable CSV ({exc})"


@dataclass
class CsvRows:
    """An open CSV file: its header, then ``(row number, values)`` per non-blank data row.

    Iterate once, inside ``with``; a row that cannot be read raises ``error`` naming the
    file and that row, so each command keeps its own error type (and exit code).
    """

    path: Path
    header: list[str]
    _handle: TextIO
    _reader: Iterator[list[str]]
    _error: type[BlindmatchError]

    def __iter__(self) -> Iterator[tuple[int, list[str]]]:
        number = 0
        try:
            for values in self._reader:
                if _is_blank(values):
                    continue
                number += 1
                if _not_utf8(values):
                    raise self._error(f"{self.path}: row {number} is not valid UTF-8")
                yield number, values
        except csv.Error as exc:
            raise self._error(f"{self.path}: row {number + 1}: {_csv_problem(exc)}") from None

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> CsvRows:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def read_rows(path: Path, error: type[BlindmatchError] = InputError) -> CsvRows:
    """Open ``path`` (UTF-8, an optional BOM) and read its header; ``error`` for every failure.

    A file that cannot be opened, is empty or has an unreadable header fails here, naming
    the file; a data row that cannot be read fails when iteration reaches it.
    """
    try:
        handle = path.open("r", encoding="utf-8-sig", errors="surrogateescape", newline="")
    except OSError as exc:
        raise error(f"cannot read {path}: {exc.strerror}") from None
    reader = csv.reader(handle, strict=True)
    try:
        header = next(reader)
    except StopIteration:
        handle.close()
        raise error(f"{path}: empty file (no header row)") from None
    except csv.Error as exc:
        handle.close()
        raise error(f"{path}: the header row: {_csv_problem(exc)}") from None
    if _not_utf8(header):
        handle.close()
        raise error(f"{path}: the header row is not valid UTF-8")
    return CsvRows(path, header, handle, reader, error)


def more_values_than_columns(header: list[str], values: list[str]) -> bool:
    """A row with more values than the header has columns: its values cannot be assigned to
    fields (a stray delimiter shifts them), so every command refuses the row as ``columns``."""
    return len(values) > len(header)


def as_record(header: list[str], values: list[str]) -> dict[str, str]:
    """The row as ``{column: value}``; a column the row has no value for is absent."""
    return dict(zip(header, values, strict=False))
