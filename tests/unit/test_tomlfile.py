"""``tomlfile.StrictFields``: the field readers the issuer and witness configs share."""

from __future__ import annotations

from pathlib import Path

import pytest

from blindmatch.tomlfile import StrictFields


class ExampleError(ValueError):
    pass


FIELDS = StrictFields(ExampleError)


def test_load_returns_the_one_table_and_refuses_anything_beside_it(tmp_path: Path) -> None:
    path = tmp_path / "x.toml"
    path.write_text('[role]\nname = "a"\n')
    assert FIELDS.load(path, "role") == {"name": "a"}
    path.write_text('[role]\nname = "a"\n[other]\n')
    with pytest.raises(ExampleError, match=r"x\.toml: other: unknown key \(the file holds one \[role\] table\)"):
        FIELDS.load(path, "role")
    path.write_text('role = 3\n')
    with pytest.raises(ExampleError, match=r"x\.toml: missing \[role\] table"):
        FIELDS.load(path, "role")


@pytest.mark.parametrize(("table", "message"), [
    ({}, "role.name: missing"),
    ({"name": ""}, "role.name: must be a non-empty string"),
    ({"name": "  "}, "role.name: must be a non-empty string"),
    ({"name": "a\x00b"}, "role.name: must be a non-empty string"),
    ({"name": 3}, "role.name: must be a non-empty string"),
])
def test_text_names_the_key(table: dict[str, object], message: str) -> None:
    with pytest.raises(ExampleError, match=message):
        FIELDS.text("role", table, "name")


def test_text_default_integer_keys_and_table() -> None:
    assert FIELDS.text("role", {}, "name", "fallback") == "fallback"
    assert FIELDS.integer("role", {"n": 4}, "n", 1, 1) == 4
    assert FIELDS.integer("role", {}, "n", 7, 1) == 7
    for bad in (True, 0, 1.5, "2"):
        with pytest.raises(ExampleError, match=r"role\.n: must be an integer >= 1"):
            FIELDS.integer("role", {"n": bad}, "n", 1, 1)
    with pytest.raises(ExampleError, match=r"role\.nmae: unknown key \(allowed: name\)"):
        FIELDS.check_keys("role", {"nmae": "a"}, {"name"})
    with pytest.raises(ExampleError, match=r"role\.tls: must be a table"):
        FIELDS.table("role.tls", [1])


@pytest.mark.parametrize("value", ["127.0.0.1:0", "[::1]:50070", "localhost:65535"])
def test_listen_accepts_host_port(value: str) -> None:
    assert FIELDS.listen("role.listen", value) == value


@pytest.mark.parametrize("value", ["127.0.0.1", "127.0.0.1:65536", ":80", "a b:1", "::1:80"])
def test_listen_refuses_anything_else(value: str) -> None:
    with pytest.raises(ExampleError, match=r"role\.listen: .* is not HOST:PORT"):
        FIELDS.listen("role.listen", value)
