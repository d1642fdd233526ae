"""``schema = ...`` in holder.toml, requester.toml and issuer.toml: a built-in name or a file (issue 16).

Every config resolves the value the way ``--schema`` does (``normalize.schema_source``):
a built-in name (``"extended"``) unless a file of that name sits next to the config, else
a file relative to the config. A value naming neither stops the config from loading with
an error naming the config file and the key.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import pytest
from helpers.issuer_setup import make_issuer, write_orders

from blindmatch.holder.config import ConfigError, load_holder_config
from blindmatch.holder.index_build import build_index
from blindmatch.holder.store import read_manifest
from blindmatch.issuer.config import IssuerConfigError, load_issuer_config
from blindmatch.issuer.issue import issue_tokens, issuer_schema
from blindmatch.normalize import builtin_schema, resolve_schema
from blindmatch.pilot.workspace import Workspace, create_workspace
from blindmatch.requester.config import ConfigError as RequesterConfigError
from blindmatch.requester.config import load_requester_config

EXTENDED = builtin_schema("extended")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    return create_workspace(tmp_path_factory.mktemp("schemas"), holder_records=30, queries=5)


def set_schema(config: Path, value: str) -> None:
    """Point the config's ``schema`` line at ``value`` (the workspace writes ``schema = "schema.toml"``)."""
    text, count = re.subn(r'(?m)^schema = ".*"$', f'schema = "{value}"', config.read_text())
    assert count == 1
    config.write_text(text)


def test_holder_config_takes_a_builtin_name_and_builds_under_it(workspace: Workspace) -> None:
    set_schema(workspace.holder_config, "extended")
    config = load_holder_config(workspace.holder_config)
    assert config.schema == "extended" and resolve_schema(config.schema) is EXTENDED
    build_index(workspace.records, config, progress=False)
    manifest = read_manifest(config.index_dir)
    assert (manifest.schema_name, manifest.schema_fingerprint) == (EXTENDED.name, EXTENDED.fingerprint)


def test_requester_config_takes_a_builtin_name(workspace: Workspace) -> None:
    set_schema(workspace.requester_config, "extended")
    config = load_requester_config(workspace.requester_config)
    assert resolve_schema(config.matching.schema) is EXTENDED


def test_a_file_named_like_a_builtin_wins_and_files_are_relative_to_the_config(workspace: Workspace) -> None:
    own = workspace.requester_dir / "extended"
    own.write_text((workspace.requester_dir / "schema.toml").read_text())
    try:
        set_schema(workspace.requester_config, "extended")
        assert load_requester_config(workspace.requester_config).matching.schema == own
    finally:
        own.unlink()
    set_schema(workspace.requester_config, "schema.toml")
    schema = resolve_schema(load_requester_config(workspace.requester_config).matching.schema)
    assert schema.fingerprint == builtin_schema("default").fingerprint


def test_issuer_config_takes_a_builtin_name_or_a_file(tmp_path: Path) -> None:
    make_issuer(tmp_path, {"Tax Authority": 10})
    path = tmp_path / "issuer.toml"
    base = path.read_text()
    path.write_text(base.replace('state_dir = "state"\n', 'state_dir = "state"\nschema = "extended"\n'))
    assert issuer_schema(load_issuer_config(path)) is EXTENDED
    (tmp_path / "mine.toml").write_text(resources.files("blindmatch.normalize").joinpath("extended_schema.toml").read_text())
    path.write_text(base.replace('state_dir = "state"\n', 'state_dir = "state"\nschema = "mine.toml"\n'))
    assert issuer_schema(load_issuer_config(path)).fingerprint == EXTENDED.fingerprint


@pytest.mark.parametrize("side", ["holder", "requester", "issuer"])
def test_a_value_naming_neither_a_builtin_nor_a_file_names_the_config_and_the_key(
    workspace: Workspace, tmp_path: Path, side: str,
) -> None:
    if side == "issuer":
        make_issuer(tmp_path, {"Tax Authority": 10})
        path = tmp_path / "issuer.toml"
        path.write_text(path.read_text().replace('state_dir = "state"\n', 'state_dir = "state"\nschema = "extnded"\n'))
        with pytest.raises(IssuerConfigError) as refused:
            load_issuer_config(path)
        key = "issuer.schema"
    else:
        path = workspace.holder_config if side == "holder" else workspace.requester_config
        set_schema(path, "extnded")
        with pytest.raises(ConfigError if side == "holder" else RequesterConfigError) as refused:
            (load_holder_config if side == "holder" else load_requester_config)(path)
        key = "holder.schema" if side == "holder" else "matching.schema"
    message = str(refused.value)
    assert str(path) in message and key in message
    assert "'extnded' is neither a built-in schema (default, extended) nor a schema file" in message


def test_the_issuer_refuses_to_issue_tokens_under_a_schema_with_several_keys_per_tier(tmp_path: Path) -> None:
    """A token file has one token per tier (SPEC 15.3): extended's one-edit and word-missing tiers give several."""
    make_issuer(tmp_path, {"Tax Authority": 10})
    path = tmp_path / "issuer.toml"
    path.write_text(path.read_text().replace('state_dir = "state"\n', 'state_dir = "state"\nschema = "extended"\n'))
    orders = tmp_path / "orders.csv"
    write_orders(orders, [{"name": "Ann Lee", "address": "1 Main St, Springfield IL 62704", "order_date": "2026-01-02"}])
    with pytest.raises(IssuerConfigError) as caught:
        issue_tokens(orders, load_issuer_config(path), tmp_path / "tokens.txt")
    assert "name-word-missing-holder+address, name-one-edit+address" in str(caught.value)
    assert not (tmp_path / "tokens.txt").exists()
