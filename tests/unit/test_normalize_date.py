"""Each date form, the century rule and the errors."""

import datetime

import pytest

from blindmatch.normalize import NormalizationError, normalize_date

D = datetime.date(2024, 3, 5)


@pytest.mark.parametrize(
    "text",
    ["2024-03-05", "20240305", "2024/03/05", "03/05/2024", "3/5/2024", "3-5-2024", "3.5.24", "3/5/24",
     "March 5, 2024", "Mar. 5 2024", "mar 5th, 2024", "5 March 2024", " 2024-03-05 "],
)
def test_forms(text: str) -> None:
    assert normalize_date(text) == D


def test_two_digit_year_posix_rule() -> None:
    assert normalize_date("1/1/68") == datetime.date(2068, 1, 1)
    assert normalize_date("1/1/69") == datetime.date(1969, 1, 1)
    assert normalize_date("1/1/00") == datetime.date(2000, 1, 1)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("2/30/2024", "day 30 does not exist in February 2024"),
        ("2023-02-29", "day 29 does not exist in February 2023"),
        ("13/01/2024", "month 13 does not exist"),
        ("Smarch 5, 2024", "unknown month name"),
        ("yesterday", "not a date in a known form (YYYY-MM-DD, MM/DD/YYYY, M/D/YY, Month D, YYYY)"),
        ("", "missing"),
    ],
)
def test_errors(text: str, reason: str) -> None:
    with pytest.raises(NormalizationError) as exc:
        normalize_date(text, field="order_date")
    assert (exc.value.field, exc.value.reason) == ("order_date", reason)
