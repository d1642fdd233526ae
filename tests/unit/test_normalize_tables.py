"""The package's tables are the protocol's: protocol/tables/ is normative, the package ships copies."""

from pathlib import Path

import pytest

from blindmatch.normalize.tables import TABLE_FILES, TABLES

ROOT = Path(__file__).resolve().parents[2]
PROTOCOL = ROOT / "protocol/tables"
PACKAGE = ROOT / "src/blindmatch/normalize/data"


@pytest.mark.parametrize("name", TABLE_FILES)
def test_package_table_equals_protocol_table(name: str) -> None:
    assert (PACKAGE / name).read_bytes() == (PROTOCOL / name).read_bytes(), f"copy protocol/tables/{name} to the package"


def test_no_table_left_out_of_the_digest() -> None:
    assert sorted(p.name for p in PROTOCOL.glob("*.csv")) == sorted(TABLE_FILES)
    assert sorted(p.name for p in PACKAGE.glob("*.csv")) == sorted(TABLE_FILES)


def test_nickname_table_is_generated_from_the_package_data() -> None:
    header = (PROTOCOL / "nicknames.csv").read_text("utf-8").splitlines()[0]
    assert header.startswith("# Given names and their nicknames, from the PyPI package nicknames 1.0.1")
    assert "WILLIAM" in TABLES.nickname_formals["BILL"]
    assert "PEGGY" in TABLES.formal_nicknames["MARGARET"]


def test_pub28_suffix_spellings_win_over_the_extras() -> None:
    assert TABLES.suffixes["LA"] == "LN" and TABLES.suffixes["BLV"] == "BLVD"
    assert TABLES.suffixes["CRT"] == "CT"  # listed in both: C1's standard


def test_protocol_default_schema_is_the_package_one() -> None:
    assert (ROOT / "protocol/schemas/default.toml").read_bytes() == (
        ROOT / "src/blindmatch/normalize/default_schema.toml"
    ).read_bytes()


@pytest.mark.parametrize("name", ["default", "extended"])
def test_protocol_schemas_are_the_package_ones(name: str) -> None:
    assert (ROOT / f"protocol/schemas/{name}.toml").read_bytes() == (
        ROOT / f"src/blindmatch/normalize/{name}_schema.toml"
    ).read_bytes()
