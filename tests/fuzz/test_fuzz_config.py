"""TOML configuration files: ``tomlfile.load_toml`` and the holder, requester, issuer, witness and policy loaders.

Operators write these by hand, so every mistake must come back as the loader's own error
(``ConfigError`` / ``PolicyError``) with a message naming what is wrong: random bytes,
valid TOML of the wrong shape, and the documented examples with values replaced, keys
removed or unknown keys added.
"""

from __future__ import annotations

import base64
import tempfile
import tomllib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fuzz_support import assert_clear
from helpers.config_texts import holder_toml, requester_toml
from hypothesis import given
from hypothesis import strategies as st

from blindmatch.audit.keys import format_verifier_key
from blindmatch.holder.config import ConfigError as HolderConfigError
from blindmatch.holder.config import load_holder_config
from blindmatch.issuer.config import IssuerConfigError, load_issuer_config
from blindmatch.policy import Policy, PolicyError
from blindmatch.requester.config import ConfigError as RequesterConfigError
from blindmatch.requester.config import load_requester_config
from blindmatch.tomlfile import load_toml
from blindmatch.witness.config import WitnessConfigError, load_witness_config

pytestmark = pytest.mark.fuzz

RAW_PUB = Ed25519PrivateKey.from_private_bytes(b"\x03" * 32).public_key().public_bytes_raw()
PUB = base64.b64encode(RAW_PUB).decode()

HOLDER = holder_toml()
REQUESTER = requester_toml(matching='mode = "membership"\nbatch_size = 64\n')

POLICY = f"""\
[organisations."County Court of Example"]
session_max_records = 5000
day_records = 20000
thirty_day_records = 200000
official_day_records = 10000
official_thirty_day_records = 100000
[[organisations."County Court of Example".officials]]
name = "Alice Clerk"
role = "Chief Clerk"
public_key = "{PUB}"
valid_from = 2026-01-01T00:00:00Z
valid_until = 2027-12-31T23:59:59Z
modes = ["membership", "cardinality"]
"""

ISSUER = """\
[issuer]
name = "court.example"
seed_file = "issuer.seed"
signing_key = "issuer.key"
state_dir = "state"
epoch_months = 1
max_addresses_per_person = 3
final_field = "order_status"
final_value = "final"
listen = "127.0.0.1:50080"
[issuer.tls]
cert = "pki/court/server.crt"
key = "pki/court/server.key"
client_ca = "pki/ca.crt"
[[issuer.holder]]
organisation = "Tax Authority"
records = 1000000
margin = 0.05
"""

WITNESS = f"""\
[witness]
name = "witness.ig.example/w1"
key_file = "witness.key"
state_dir = "state"
listen = "127.0.0.1:50070"
[witness.tls]
cert = "pki/ig/server.crt"
key = "pki/ig/server.key"
client_ca = "pki/ca.crt"
[[witness.log]]
origin = "holder/Tax-Authority"
verifier_key = "{format_verifier_key("holder/Tax-Authority", RAW_PUB)}"
submitter = "Tax Authority"
"""

LOADERS: dict[str, tuple[str, Callable[[Path], Any], type[Exception]]] = {
    "holder": (HOLDER, load_holder_config, HolderConfigError),
    "issuer": (ISSUER, load_issuer_config, IssuerConfigError),
    "witness": (WITNESS, load_witness_config, WitnessConfigError),
    "requester": (REQUESTER, load_requester_config, RequesterConfigError),
    "policy": (POLICY, Policy.load, PolicyError),
}

# Text TOML can carry (no lone surrogates: a TOML file is UTF-8).
TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=30)
SCALARS = st.one_of(
    TEXT, st.sampled_from(["", " ", "..", "/", "a\x00b", "127.0.0.1:99999", "[::1]:1", "membership", "cardinality"]),
    st.integers(min_value=-(2**63), max_value=2**63 - 1), st.sampled_from([0, 1, -1, 2**63 - 1, 2**32]),
    st.floats(), st.booleans(),
    st.datetimes(timezones=st.sampled_from([None, UTC])), st.dates(), st.times(),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=6,
)


def _tables(doc: dict[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every table path of a document (array-of-tables entries included)."""
    paths = [prefix]
    for key, value in doc.items():
        if isinstance(value, dict):
            paths += _tables(value, (*prefix, key))
        elif isinstance(value, list):
            paths += [p for i, v in enumerate(value) if isinstance(v, dict) for p in _tables(v, (*prefix, key, str(i)))]
    return paths


def _table(doc: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    for key in path:
        doc = doc[int(key)] if isinstance(doc, list) else doc[key]  # type: ignore[assignment]
    return doc


@st.composite
def mutated_documents(draw: st.DrawFn, text: str) -> dict[str, Any]:
    doc = tomllib.loads(text)
    for _ in range(draw(st.integers(1, 4))):
        table = _table(doc, draw(st.sampled_from(_tables(doc))))
        action = draw(st.sampled_from(["replace", "replace", "delete", "add"]))
        if action == "add" or not table:
            table[draw(TEXT)] = draw(VALUES)
        elif action == "delete":
            del table[draw(st.sampled_from(sorted(table)))]
        else:
            table[draw(st.sampled_from(sorted(table)))] = draw(VALUES)
    return doc


def _check_load(kind: str, raw: bytes) -> None:
    _, load, error = LOADERS[kind]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{kind}.toml"
        path.write_bytes(raw)
        try:
            load(path)
        except error as exc:
            assert_clear(exc)


@given(st.sampled_from(sorted(LOADERS)), st.data())
def test_documented_configs_with_hostile_values(kind: str, data: st.DataObject) -> None:
    doc = data.draw(mutated_documents(LOADERS[kind][0]))
    _check_load(kind, tomli_w.dumps(doc).encode())


@given(st.sampled_from(sorted(LOADERS)), st.binary(max_size=300))
def test_random_bytes_as_config(kind: str, raw: bytes) -> None:
    _check_load(kind, raw)


@given(st.sampled_from(sorted(LOADERS)), st.dictionaries(TEXT, VALUES, max_size=4))
def test_valid_toml_of_the_wrong_shape(kind: str, doc: dict[str, Any]) -> None:
    _check_load(kind, tomli_w.dumps(doc).encode())


@given(st.binary(max_size=300))
def test_load_toml_names_the_file(raw: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "any.toml"
        path.write_bytes(raw)
        try:
            assert isinstance(load_toml(path, ValueError, "config"), dict)
        except ValueError as exc:
            assert_clear(exc, str(path))


def test_examples_load_unchanged() -> None:
    """The seeds of the mutations are valid, so the fuzzing starts from the accepted shape."""
    for kind, (text, load, _) in LOADERS.items():
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"{kind}.toml"
            path.write_text(text)
            assert load(path) is not None


HOSTILE = ["", " ", "a\x00b", "\u2028", "x" * 5000, -1, 0, 2**63 - 1, 1.5, float("nan"), True,
           [], ["a\x00b"], {}, datetime(2026, 1, 1), datetime(2026, 1, 1, tzinfo=UTC)]


def _leaves(kind: str) -> list[tuple[str, ...]]:
    doc = tomllib.loads(LOADERS[kind][0])
    return [(*table, key) for table in _tables(doc) for key, value in _table(doc, table).items()
            if not isinstance(value, dict) and not (isinstance(value, list) and value and isinstance(value[0], dict))]


@pytest.mark.parametrize("kind", sorted(LOADERS))
def test_every_key_with_every_hostile_value(kind: str) -> None:
    """Deterministic sweep: each key of the example set to each hostile value in turn.

    Regression: a NUL byte in a path (``key_file``, ``public_key_file``, ``schema``) raised
    ``ValueError: embedded null byte`` from the file system instead of the loader's error.
    """
    for path in _leaves(kind):
        for value in HOSTILE:
            doc = tomllib.loads(LOADERS[kind][0])
            _table(doc, path[:-1])[path[-1]] = value
            _check_load(kind, tomli_w.dumps(doc).encode())


@pytest.mark.parametrize("origin", ["has space", "a+b", "caf\u00e9"])
def test_holder_config_refuses_an_audit_origin_the_log_refuses(origin: str) -> None:
    doc = tomllib.loads(HOLDER)
    doc["holder"]["audit_origin"] = origin
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "holder.toml"
        path.write_text(tomli_w.dumps(doc))
        with pytest.raises(HolderConfigError):
            load_holder_config(path)
