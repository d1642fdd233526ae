"""Dates to :class:`datetime.date`, from ISO 8601 and the US forms records are written in.

Accepted: ``YYYY-MM-DD`` (also ``YYYYMMDD`` and ``YYYY/MM/DD``), ``MM/DD/YYYY``,
``M/D/YY`` and the same with ``-`` or ``.``, ``March 5, 2024``, ``Mar. 5 2024`` and
``5 March 2024``. Numeric dates with the year last are read month first (US usage).

Two-digit years follow the POSIX ``%y`` rule: 69-99 -> 1969-1999, 00-68 -> 2000-2068.
A fixed rule, not one that slides with today's date, so that both peers and every rerun
read the same date.
"""

from __future__ import annotations

import datetime
import re

from blindmatch.normalize.errors import NormalizationError

ALGORITHM_VERSION = "date/1"

_MONTHS = {
    name: i
    for i, names in enumerate(
        (
            ("JANUARY", "JAN"),
            ("FEBRUARY", "FEB"),
            ("MARCH", "MAR"),
            ("APRIL", "APR"),
            ("MAY",),
            ("JUNE", "JUN"),
            ("JULY", "JUL"),
            ("AUGUST", "AUG"),
            ("SEPTEMBER", "SEP", "SEPT"),
            ("OCTOBER", "OCT"),
            ("NOVEMBER", "NOV"),
            ("DECEMBER", "DEC"),
        ),
        start=1,
    )
    for name in names
}
_ISO = re.compile(r"(\d{4})([-/]?)(\d{2})\2(\d{2})")
_US = re.compile(r"(\d{1,2})([/.-])(\d{1,2})\2(\d{2}|\d{4})")
_MONTH_FIRST = re.compile(r"([A-Z]+)\.? +(\d{1,2})(?:ST|ND|RD|TH)?,? +(\d{4})")
_DAY_FIRST = re.compile(r"(\d{1,2})(?:ST|ND|RD|TH)? +([A-Z]+)\.?,? +(\d{4})")
_MONTH_NAMES = (
    ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"]
)


def _century(yy: int) -> int:
    """POSIX ``%y``: 69-99 are 1969-1999, 00-68 are 2000-2068."""
    return 1900 + yy if yy >= 69 else 2000 + yy


def _build(year: int, month: int, day: int, field: str) -> datetime.date:
    if not 1 <= month <= 12:
        raise NormalizationError(field, f"month {month} does not exist")
    try:
        return datetime.date(year, month, day)
    except ValueError:
        raise NormalizationError(
            field, f"day {day} does not exist in {_MONTH_NAMES[month - 1]} {year}"
        ) from None


def normalize_date(text: str, field: str = "date") -> datetime.date:
    """Parse a date; impossible dates (Feb 30) and unknown forms raise :class:`NormalizationError`."""
    if text is None or not text.strip():
        raise NormalizationError(field, "missing")
    s = " ".join(text.strip().upper().split())
    m = _ISO.fullmatch(s)
    if m:
        return _build(int(m.group(1)), int(m.group(3)), int(m.group(4)), field)
    m = _US.fullmatch(s)
    if m:
        year = int(m.group(4))
        if len(m.group(4)) == 2:
            year = _century(year)
        return _build(year, int(m.group(1)), int(m.group(3)), field)
    m = _MONTH_FIRST.fullmatch(s)
    if m:
        month_name, day_text, year_text = m.group(1), m.group(2), m.group(3)
    else:
        m = _DAY_FIRST.fullmatch(s)
        if not m:
            raise NormalizationError(
                field, "not a date in a known form (YYYY-MM-DD, MM/DD/YYYY, M/D/YY, Month D, YYYY)"
            )
        day_text, month_name, year_text = m.group(1), m.group(2), m.group(3)
    month = _MONTHS.get(month_name)
    if month is None:
        raise NormalizationError(field, "unknown month name")
    return _build(int(year_text), month, int(day_text), field)
