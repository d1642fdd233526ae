"""The witness daemon over loopback mutual TLS, driven by the daemons' client."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from helpers.witness_setup import (
    HOLDER_ORIGIN,
    OTHER_ORG,
    WitnessSetup,
    add_sessions,
    rewrite_log,
    running_witness,
    submit,
    write_config,
)

from blindmatch.audit import AuditLog
from blindmatch.audit.cosignature import cosignatures_in
from blindmatch.audit.cosigned import COSIGNED_NAME, read_cosigned
from blindmatch.transport.tls import tls_problem
from blindmatch.witness import protocol as p
from blindmatch.witness.client import WitnessClient, WitnessSubmitError, last_cosigned_size, load_witness_endpoints
from blindmatch.witness.config import load_witness_config
from blindmatch.witness.service import SERVICE_NAME, WitnessDaemon, WitnessStartError
from blindmatch.witness.state import WitnessState, WitnessStateError


def test_submit_stores_verified_cosignatures_next_to_the_log(env: WitnessSetup) -> None:
    with running_witness(env.config_path) as daemon:
        first = submit(env, daemon.port)
        with env.open_log() as log:
            add_sessions(log, 3, 5)
            client = WitnessClient([env.endpoint(daemon.port)])
            log.checkpoint()
            assert client.pending(log) == [env.key.name]
            second = client.submit(log)
            assert last_cosigned_size(log, env.key) == log.size
            assert client.pending(log) == []
    assert [c.witness for c in first + second] == [env.key.name] * 2
    notes, torn = read_cosigned(env.log_dir / "audit")
    assert not torn and len(notes) == 2
    assert all(cosignatures_in(note, env.key) for note in notes)


def test_conflict_is_retried_with_the_witness_size(env: WitnessSetup) -> None:
    with running_witness(env.config_path) as daemon:
        submit(env, daemon.port)
        (env.log_dir / "audit" / COSIGNED_NAME).unlink()  # the client no longer knows the witness's size
        with env.open_log() as log:
            add_sessions(log, 3, 2)
            assert last_cosigned_size(log, env.key) == 0
            cosignatures = WitnessClient([env.endpoint(daemon.port)]).submit(log, log.checkpoint())
        assert len(cosignatures) == 1
    ledger = (env.root / "state" / "events.jsonl").read_text()
    events = [json.loads(line) for line in ledger.splitlines()]
    assert [e["event"] for e in events] == ["started", "cosigned", "refused", "cosigned", "stopped"]
    assert events[2]["reason"] == "size_conflict"


def test_restart_keeps_the_witness_state(env: WitnessSetup) -> None:
    with running_witness(env.config_path) as daemon:
        submit(env, daemon.port)
    (env.log_dir / "audit" / COSIGNED_NAME).unlink()
    with running_witness(env.config_path) as daemon, env.open_log() as log:
        client = WitnessClient([env.endpoint(daemon.port)])
        size = log.size
        add_sessions(log, 3, 1)
        client.submit(log, log.checkpoint())  # needs the size cosigned before the restart
    ledger = (env.root / "state" / "events.jsonl").read_text()
    assert f'"latest_size":{size},"origin":"holder/Tax-Authority","peer":"Tax Authority","reason":"size_conflict"' in ledger


def test_wrong_organisation_is_refused(env: WitnessSetup) -> None:
    with running_witness(env.config_path) as daemon, pytest.raises(WitnessSubmitError) as info:
        submit(env, daemon.port, organisation=OTHER_ORG)
    (failure,) = info.value.failures
    assert (failure.status, failure.reason) == ("PERMISSION_DENIED", p.ORGANISATION_NOT_ALLOWED)
    assert info.value.cosignatures == []
    assert not (env.log_dir / "audit" / COSIGNED_NAME).exists()


def test_a_rolled_back_log_is_told_so(env: WitnessSetup) -> None:
    with running_witness(env.config_path) as daemon, env.open_log() as log:
        old = log.checkpoint()
        add_sessions(log, 3, 2)
        WitnessClient([env.endpoint(daemon.port)]).submit(log, log.checkpoint())
        with pytest.raises(WitnessSubmitError, match="this log was rolled back"):
            WitnessClient([env.endpoint(daemon.port)]).submit(log, old)


@pytest.mark.parametrize("which", ["witness.key", "pki/inspector-general/server.key"])
def test_a_key_readable_by_others_is_refused_at_start(env: WitnessSetup, which: str) -> None:
    os.chmod(env.root / which, 0o644)
    with pytest.raises(WitnessStartError, match=r"accessible by group or others \(mode 0644\); run chmod 600"):
        WitnessDaemon(load_witness_config(env.config_path))


def test_health_service_and_tls_version_check(env: WitnessSetup) -> None:
    with running_witness(env.config_path) as daemon:
        endpoint = env.endpoint(daemon.port)
        credentials = grpc.ssl_channel_credentials(endpoint.ca.read_bytes(), endpoint.key_file.read_bytes(),
                                                   endpoint.cert.read_bytes())
        with grpc.secure_channel(endpoint.address, credentials) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            for name in ("", SERVICE_NAME):
                response = stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=5)
                assert response.status == health_pb2.HealthCheckResponse.SERVING
    assert tls_problem({"ssl_tls_version": [b"TLSv1.3"]}) is None
    assert "requires TLS 1.3" in (tls_problem({"ssl_tls_version": [b"TLSv1.2"]}) or "")
    assert tls_problem({}) is not None


def test_endpoints_load_from_a_daemon_config_table(env: WitnessSetup) -> None:
    table = [{"verifier_key": env.key.verifier_key(), "address": "127.0.0.1:50070", "ca": "pki/ca.crt",
              "cert": "pki/tax-authority/client.crt", "key": "pki/tax-authority/client.key"}]
    (endpoint,) = load_witness_endpoints(table, env.root, "holder.witness")
    assert endpoint.key == env.key and endpoint.cert == env.root / "pki/tax-authority/client.crt"
    with pytest.raises(ValueError, match=r"holder\.witness\[0\]\.adress: unknown key"):
        load_witness_endpoints([{**table[0], "adress": "x"}], env.root, "holder.witness")


def test_cli_serve_runs_until_sigterm(env: WitnessSetup, tmp_path: Path) -> None:
    process = subprocess.Popen([sys.executable, "-m", "blindmatch", "witness", "serve", "--config",
                                str(env.config_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("witness witness.ig.example/w1 listening on 127.0.0.1:"), line
        port = int(line.rsplit(":", 1)[1])
        assert submit(env, port)
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=20)
    assert process.returncode == 0, stderr


def test_a_fork_is_refused_over_grpc_and_the_evidence_kept(env: WitnessSetup) -> None:
    with running_witness(env.config_path) as daemon:
        submit(env, daemon.port)
        rewrite_log(env.log_dir, keep=[0, 2], extra_sessions=1)  # same size, other root, same key
        with pytest.raises(WitnessSubmitError) as info:
            submit(env, daemon.port)
    (failure,) = info.value.failures
    assert (failure.status, failure.reason) == ("FAILED_PRECONDITION", p.FORK)
    (evidence,) = (env.root / "state" / "evidence").iterdir()
    assert evidence.name.endswith("-fork.txt") and evidence.read_text().count("holder/Tax-Authority\n3\n") == 2


def test_a_changed_log_key_stops_the_witness_at_start(env: WitnessSetup, tmp_path: Path) -> None:
    with running_witness(env.config_path) as daemon:
        submit(env, daemon.port)
    AuditLog.open(tmp_path / "other", HOLDER_ORIGIN).close()
    other_key = (tmp_path / "other" / "audit" / "audit.pub").read_text().strip()
    write_config(env.root, other_key)
    with pytest.raises(WitnessStateError, match="a witnessed log cannot change its key"):
        WitnessDaemon(load_witness_config(env.config_path))
    WitnessState(env.root / "state").close()  # the failed start released the state directory


def test_every_reason_has_a_grpc_status() -> None:
    from blindmatch.vocabulary import WITNESS_REASONS, Reason

    reasons = {value for name, value in vars(p).items() if name.isupper() and isinstance(value, Reason)}
    assert reasons == set(WITNESS_REASONS)
    assert all(r.status in grpc.StatusCode.__members__ for r in reasons)
    assert grpc.StatusCode[p.SIZE_CONFLICT.status] == grpc.StatusCode.ABORTED
    assert grpc.StatusCode[p.FORK.status] == grpc.StatusCode.FAILED_PRECONDITION


def test_cli_serve_refuses_a_world_readable_key(env: WitnessSetup, capsys: pytest.CaptureFixture[str]) -> None:
    from blindmatch.cli.main import main

    os.chmod(env.root / "witness.key", 0o644)
    assert main(["witness", "serve", "--config", str(env.config_path)]) == 1
    assert "witness.key_file: key file" in capsys.readouterr().err
