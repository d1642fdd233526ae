"""Each name rule."""

import pytest

from blindmatch.normalize import NormalizationError, normalize_name


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("John Smith", "JOHN SMITH"),  # case
        ("José García", "Jose Garcia"),  # accents
        ("Łukasz Søren", "Lukasz Soren"),  # letters NFKD does not decompose
        ("John O'Brien", "john obrien"),  # apostrophe
        ("John O’Brien", "John OBrien"),  # typographic apostrophe
        ("John Smith Jr.", "John Smith Junior"),  # suffix spelling
        ("John Smith II", "John Smith 2nd"),
        ("Smith, John", "John Smith"),  # reorder
        ("Smith, John, Jr.", "John Smith Jr"),
        ("Smith, John Jr", "John Smith Jr"),
        ("Dr. John Smith", "John Smith"),  # honorific
        ("Mrs Mary Smith", "Mary Smith"),
        ("Smith, Mr. John", "John Smith"),
        ("Mary Smith PhD", "Mary Smith"),  # post-nominal
        ("Ann Lee-Smith", "Ann Lee Smith"),  # hyphen = space
        ("García-López, José", "Jose Garcia Lopez"),
        ("Maria de la Cruz", "Maria DeLaCruz"),  # particles
        ("Seán Mac Donald", "Sean MacDonald"),
    ],
)
def test_same_person(a: str, b: str) -> None:
    assert normalize_name(a) == normalize_name(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("John Smith", "Jane Smith"),
        ("John Smith", "John Smyth"),
        ("John Smith Jr", "John Smith Sr"),
        ("John Smith Jr", "John Smith"),
        ("John Smith II", "John Smith III"),
    ],
)
def test_different_people(a: str, b: str) -> None:
    assert normalize_name(a) != normalize_name(b)


def test_canonical_form() -> None:
    assert normalize_name("Dr. O'Brien-Smith, José Jr.") == "JOSE OBRIEN SMITH JR"
    assert normalize_name("Van Le") == "VAN LE"  # a particle as the first word stays a given name


@pytest.mark.parametrize("text", ["", "  ", "Mr.", "Dr Mrs", "123", "---"])
def test_errors(text: str) -> None:
    with pytest.raises(NormalizationError) as exc:
        normalize_name(text, field="holder_name")
    assert exc.value.field == "holder_name"
