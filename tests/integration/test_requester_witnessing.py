"""A one-shot run's witness submission (``requester.witnessing``): bounded, never failing the run."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from helpers.witness_setup import WitnessSetup, add_sessions, running_witness

from blindmatch.audit.checkpoint import parse_checkpoint
from blindmatch.audit.cosigned import read_cosigned
from blindmatch.requester.witnessing import LATER, submit_checkpoint
from blindmatch.vocabulary import Mode
from blindmatch.witness.client import last_cosigned_size


def test_the_run_checkpoints_what_it_wrote_and_gets_it_cosigned(env: WitnessSetup) -> None:
    with running_witness(env.config_path) as daemon, env.open_log() as log:
        endpoint = env.endpoint(daemon.port)
        first = submit_checkpoint(log, [endpoint])
        add_sessions(log, 3, 4)  # entries no checkpoint covers yet, as a run leaves them
        second = submit_checkpoint(log, [endpoint])
        assert last_cosigned_size(log, env.key) == log.size == second.size == first.size + 4
        checkpoints_before = (env.log_dir / "audit" / "checkpoints").read_bytes()
        again = submit_checkpoint(log, [endpoint])  # nothing new: no checkpoint written, nothing sent
        assert (env.log_dir / "audit" / "checkpoints").read_bytes() == checkpoints_before
    assert first.cosigned == second.cosigned == again.cosigned == (env.key.name,)
    assert second.as_json() == {"checkpoint_size": 7, "cosigned_by": [env.key.name], "pending": [], "later": ""}
    notes, _ = read_cosigned(env.log_dir / "audit")
    assert [parse_checkpoint(note, "holder/Tax-Authority", log.public_key).size for note in notes] == [3, 7]


def test_an_unreachable_witness_is_reported_and_the_next_run_catches_up(env: WitnessSetup) -> None:
    with running_witness(env.config_path) as daemon:
        port = daemon.port
    endpoint = env.endpoint(port)  # the witness is down: nothing listens on its port
    with env.open_log() as log:
        started = time.monotonic()
        missed = submit_checkpoint(log, [endpoint], retry_seconds=1.0)
        assert time.monotonic() - started < 1.0 + endpoint.timeout_seconds
        assert missed.cosigned == () and [name for name, _ in missed.pending] == [env.key.name]
        summary = missed.as_json()
        assert summary["later"] == LATER and "witness witness.ig.example/w1: UNAVAILABLE" in summary["pending"][0]["error"]
        assert last_cosigned_size(log, env.key) == 0
        add_sessions(log, 3, 2)
    restarted = env.config_path.read_text().replace('listen = "127.0.0.1:0"', f'listen = "127.0.0.1:{port}"')
    env.config_path.write_text(restarted)
    with running_witness(env.config_path), env.open_log() as log:
        caught_up = submit_checkpoint(log, [endpoint])  # the next run: one checkpoint covers both runs
        assert caught_up.cosigned == (env.key.name,) and caught_up.pending == ()
        assert last_cosigned_size(log, env.key) == log.size == missed.size + 2


def test_the_command_says_who_cosigned_and_what_is_left_for_later(
    env: WitnessSetup, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from blindmatch.cli.requester import _print_summary

    with running_witness(env.config_path) as daemon:
        port = daemon.port
    with env.open_log() as log:
        report = submit_checkpoint(log, [env.endpoint(port)], retry_seconds=0.5)
    out = tmp_path / "results.csv"
    out.write_text("name,address,matched,confirms\n")
    summary: dict[str, object] = {"witnesses": report.as_json(), "job_id": "j1", "state": "succeeded", "records": 0,
                                  "ineligible": 0, "invalid": 0, "matches": 0, "out": str(out)}
    _print_summary(dict(summary), Mode.MEMBERSHIP, as_json=False)
    said = capsys.readouterr()
    assert "results in" in said.out and "witness" not in said.out  # stdout stays the result
    assert f"warning: witness {env.key.name}: UNAVAILABLE" in said.err and LATER in said.err
    _print_summary(dict(summary), Mode.MEMBERSHIP, as_json=True)
    assert json.loads(capsys.readouterr().out)["witnesses"]["pending"][0]["witness"] == env.key.name
