"""The witness tests' set-up itself: config loading, key files, the keygen command."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.witness_setup import HOLDER_ORG, HOLDER_ORIGIN, WITNESS_NAME, WitnessSetup

from blindmatch.witness.config import WitnessConfigError, load_witness_config
from blindmatch.witness.keys import create_witness_key, load_witness_key


def test_config_loads_and_names_the_log(env: WitnessSetup) -> None:
    config = load_witness_config(env.config_path)
    assert config.name == WITNESS_NAME
    assert config.log(HOLDER_ORIGIN) is not None and config.log(HOLDER_ORIGIN).submitter == HOLDER_ORG
    assert config.log("holder/other") is None


def test_config_rejects_unknown_keys_and_mismatched_origin(env: WitnessSetup) -> None:
    text = env.config_path.read_text()
    env.config_path.write_text(text.replace("state_dir", "statedir"))
    with pytest.raises(WitnessConfigError, match=r"witness\.statedir: unknown key"):
        load_witness_config(env.config_path)
    env.config_path.write_text(text.replace(f'origin = "{HOLDER_ORIGIN}"', 'origin = "holder/Elsewhere"'))
    with pytest.raises(WitnessConfigError, match=r"witness\.log\[0\]\.verifier_key: names"):
        load_witness_config(env.config_path)


def test_witness_key_is_created_0600_and_never_overwritten(env: WitnessSetup) -> None:
    assert (env.root / "witness.key").stat().st_mode & 0o777 == 0o600
    assert (env.root / "witness.key.pub").read_text().strip() == env.key.verifier_key()
    with pytest.raises(Exception, match="already exists"):
        create_witness_key(env.root / "witness.key", WITNESS_NAME)
    load_witness_key(env.root / "witness.key")


def test_cli_keygen_writes_the_key_pair_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from blindmatch.cli.main import main

    out = tmp_path / "keys" / "w.key"
    assert main(["witness", "keygen", "--name", "witness.example/cli", "--out", str(out)]) == 0
    vkey = (tmp_path / "keys" / "w.key.pub").read_text().strip()
    assert vkey.startswith("witness.example/cli+") and vkey in capsys.readouterr().out
    assert out.stat().st_mode & 0o777 == 0o600
    assert main(["witness", "keygen", "--name", "witness.example/cli", "--out", str(out)]) == 1
    assert "refusing to overwrite" in capsys.readouterr().err
    assert main(["witness", "keygen", "--name", "has space", "--out", str(tmp_path / "x.key")]) == 1
