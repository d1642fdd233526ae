"""Storage faults under the holder (issue 17): a full audit disk costs no budget, and a
lost, emptied, corrupt or edited budget database is refused at start and rebuilt from the log."""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
import pytest
from helpers.holder_deployment import (
    Deployment,
    download,
    make_deployment,
    requester_keys,
    requester_session,
    write_records,
)

from blindmatch.audit import log as audit_log
from blindmatch.audit import verify_log
from blindmatch.cli.main import main
from blindmatch.crypto.batch import BatchEngine
from blindmatch.holder.budget_ledger import BudgetLedgerError, check_budgets, rebuild_budgets
from blindmatch.holder.service import HolderDaemon
from blindmatch.holder.store import MANIFEST_NAME, load_key_file, next_key_path, read_manifest
from blindmatch.policy import BudgetStore
from blindmatch.transport.status import reason_from_rpc_error
from blindmatch.v1 import holder_pb2 as pb
from blindmatch.v1 import holder_pb2_grpc as pb_grpc
from blindmatch.vocabulary import Mode

pytestmark = pytest.mark.timeout(90)


def _try_mount_tmpfs(directory: Path) -> bool:
    directory.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(directory)],
                          capture_output=True, check=False)
    return done.returncode == 0


@contextmanager
def audit_disk(root: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """The holder's audit directory on a 1 MiB tmpfs when mounting works here, else on the
    ordinary disk with the log's write replaced by one failing with ENOSPC while "full"."""
    mounted = _try_mount_tmpfs(root / "audit")

    class Disk:
        def fill(self) -> None:
            if mounted:
                with (root / "audit" / "filler").open("wb") as filler:
                    try:
                        while True:
                            filler.write(b"\0" * 65536)
                            filler.flush()
                    except OSError as exc:
                        assert exc.errno == errno.ENOSPC
            else:
                def full(fd: int, data: bytes) -> None:
                    raise OSError(errno.ENOSPC, "No space left on device")

                monkeypatch.setattr(audit_log, "_write_all", full)

        def free(self) -> None:
            if mounted:
                (root / "audit" / "filler").unlink()
            else:
                monkeypatch.undo()

    try:
        yield Disk()
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(root / "audit")], check=False)


def debits(dep: Deployment) -> list[bytes]:
    with BudgetStore(dep.config.budget_db) as store:
        return [d.session_id for d in store.debits()]


def session_on(dep: Deployment, daemon: HolderDaemon, engine: BatchEngine, index: object) -> None:
    """One 20-record session on an index downloaded before."""
    pk = load_key_file(dep.config.key_file).public_key
    session = requester_session(index, requester_keys(range(20)), Mode.MEMBERSHIP, engine,  # type: ignore[arg-type]
                                oprf_public_key=pk)
    envelope = dep.sign_for(session_id=session.session_id, key_id=index.header.key_id,  # type: ignore[attr-defined]
                        index_digest=index.digest, commitment=session.blinded_commitment,  # type: ignore[attr-defined]
                        count=session.element_count, mode=Mode.MEMBERSHIP)
    with dep.channel(daemon.port) as ch:
        dep.run_match(pb_grpc.HolderStub(ch), session, envelope)


def one_session(dep: Deployment, daemon: HolderDaemon, engine: BatchEngine, records: int = 20) -> bytes:
    with dep.channel(daemon.port) as ch:
        stub = pb_grpc.HolderStub(ch)
        session, envelope = dep.signed_session(stub, engine, range(records), Mode.MEMBERSHIP)
        dep.run_match(stub, session, envelope)
        return session.session_id


def test_full_audit_disk_refuses_the_session_and_debits_nothing(
        tmp_path: Path, engine: BatchEngine, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    with audit_disk(tmp_path, monkeypatch) as disk:
        dep = make_deployment(tmp_path, records=50)
        with dep.running(engine) as daemon:
            first = one_session(dep, daemon, engine)
            with dep.channel(daemon.port) as ch:
                index = download(pb_grpc.HolderStub(ch), Mode.MEMBERSHIP)  # while the disk has room
            disk.fill()
            # The log file's last page (4 KiB) may still take a few entries: a download whose
            # entry was written succeeds; the first whose entry cannot be written fails.
            with dep.channel(daemon.port) as ch:
                for _attempt in range(40):
                    try:
                        download(pb_grpc.HolderStub(ch), Mode.MEMBERSHIP)
                    except grpc.RpcError as exc:
                        assert reason_from_rpc_error(exc) == "audit_unavailable"
                        break
                else:
                    pytest.fail("downloads kept succeeding on a full audit disk")
            # A full tmpfs may still take a few entries in the log file's last page: such a
            # session is granted (with its entries), then ends when the next entry fails.
            refused = []
            for _attempt in range(6):  # each retry used to debit again, with no entry
                with pytest.raises(grpc.RpcError) as info:
                    session_on(dep, daemon, engine, index)
                assert info.value.code() is grpc.StatusCode.UNAVAILABLE
                assert reason_from_rpc_error(info.value) == "audit_unavailable"
                refused.append("nothing was debited" in info.value.details())
            assert refused[-3:] == [True, True, True]
            assert "cannot write session_opened to the audit log" in caplog.text
            disk.free()
            check_budgets(dep.config.budget_db, tmp_path)  # every debit has its entries
            debited_while_full = len(debits(dep)) - 1
            assert debited_while_full == refused.count(False) <= 1
            second = one_session(dep, daemon, engine)
        assert debits(dep)[0] == first and debits(dep)[-1] == second
        result = verify_log(tmp_path)
        assert result.ok, result.error
        check_budgets(dep.config.budget_db, tmp_path)  # the log and the store agree


@pytest.fixture
def served(tmp_path: Path, engine: BatchEngine) -> tuple[Deployment, list[bytes]]:
    """A deployment whose holder granted two sessions, then stopped."""
    dep = make_deployment(tmp_path, records=50)
    with dep.running(engine) as daemon:
        sessions = [one_session(dep, daemon, engine, 20), one_session(dep, daemon, engine, 30)]
    return dep, sessions


def _delete(db: Path, where: str = "") -> None:
    with sqlite3.connect(db) as conn:
        conn.execute(f"DELETE FROM debits {where}")
    conn.close()


def _serve_fails(dep: Deployment, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["holder", "serve", "--config", str(dep.root / "holder.toml")]) == 1
    return capsys.readouterr().err


@pytest.mark.parametrize("fault", ["missing", "emptied", "corrupt", "edited", "unlogged debit"])
def test_a_damaged_budget_database_is_refused_and_rebuilt(
        served: tuple[Deployment, list[bytes]], fault: str, engine: BatchEngine,
        capsys: pytest.CaptureFixture[str]) -> None:
    dep, sessions = served
    db = dep.config.budget_db
    if fault == "missing":
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
    elif fault == "emptied":
        _delete(db)
    elif fault == "corrupt":
        with sqlite3.connect(db) as conn:  # move the WAL into the file, then damage the file
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
        data = bytearray(db.read_bytes())
        data[0:100] = b"\xff" * 100
        db.write_bytes(bytes(data))
    elif fault == "edited":
        with sqlite3.connect(db) as conn:
            conn.execute("UPDATE debits SET records = 1")
        conn.close()
    else:  # a debit with no audit entry
        with BudgetStore(db) as store:
            store.restore([dataclasses.replace(store.debits()[0], session_id=b"\x01" * 16, nonce=b"\x02" * 16)])
    with pytest.raises(BudgetLedgerError, match=str(db)):
        HolderDaemon.from_config(dep.config)
    err = _serve_fails(dep, capsys)
    assert str(db) in err and "rebuild-budgets" in err

    assert main(["holder", "rebuild-budgets", "--config", str(dep.root / "holder.toml")]) == 0
    out = capsys.readouterr().out
    assert "2 debits, 50 records" in out
    assert debits(dep) == sessions
    check_budgets(db, dep.root)
    assert any(json.loads(line)["event"] == "budgets_rebuilt"
               for line in (dep.root / "audit" / "log.jsonl").read_text().splitlines())
    with dep.running(engine) as daemon:
        one_session(dep, daemon, engine)


def test_a_debit_audited_but_not_committed_is_completed_at_start(served: tuple[Deployment, list[bytes]]) -> None:
    """The state a kill -9 between writing the entries and committing leaves behind."""
    dep, sessions = served
    _delete(dep.config.budget_db, f"WHERE session_id = x'{sessions[-1].hex()}'")
    assert check_budgets(dep.config.budget_db, dep.root) == 1
    assert debits(dep) == sessions
    _delete(dep.config.budget_db, f"WHERE session_id = x'{sessions[0].hex()}'")
    with pytest.raises(BudgetLedgerError, match="lacks 1 of the 2 logged debits"):
        check_budgets(dep.config.budget_db, dep.root)


def test_rebuild_refuses_a_log_that_does_not_verify(served: tuple[Deployment, list[bytes]]) -> None:
    dep, _ = served
    log_file = dep.root / "audit" / "log.jsonl"
    lines = log_file.read_text().splitlines(keepends=True)
    entry = json.loads(lines[1])
    entry["peer"] = "someone-else"
    lines[1] = json.dumps(entry, separators=(",", ":"), sort_keys=True) + "\n"
    log_file.write_text("".join(lines))
    with pytest.raises(BudgetLedgerError, match="does not verify"):
        rebuild_budgets(dep.config.budget_db, dep.root, dep.config.audit_origin)


def test_a_session_cut_by_kill_9_is_settled_at_restart(tmp_path: Path, engine: BatchEngine) -> None:
    """Reserve, then settle (SPEC 7.6): the holder dies after evaluating one batch of three;
    on restart the reservation is settled to that batch, from the audit log."""
    import re
    import signal

    from helpers.holder_deployment import MatchClient

    from blindmatch.core.pacing import pace
    from blindmatch.pilot.processes import blindmatch_command
    from blindmatch.transport.wire import client_message_to_pb, server_message_from_pb

    dep = make_deployment(tmp_path, records=200)
    server = subprocess.Popen(blindmatch_command("holder", "serve", "--config", str(dep.root / "holder.toml")),
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert server.stdout is not None
        port = int(re.search(r"listening on .*:(\d+)", server.stdout.readline()).group(1))  # type: ignore[union-attr]
        with dep.channel(port) as ch:
            stub = pb_grpc.HolderStub(ch)
            session, envelope = dep.signed_session(stub, engine, range(150), Mode.MEMBERSHIP)
            assert len(session.batch_digests) == 3
            client = MatchClient(stub)
            client.send(client_message_to_pb(session.hello(envelope)))
            accept = next(client.responses)
            assert accept.WhichOneof("message") == "accept"
            session.receive(server_message_from_pb(accept))
            client.send(client_message_to_pb(pace(session, window=1)[0]))
            assert next(client.responses).WhichOneof("message") == "evaluated"
            server.send_signal(signal.SIGKILL)
            server.wait(10)
            client.done()
    finally:
        if server.poll() is None:
            server.kill()
    with BudgetStore(dep.config.budget_db) as store:
        assert [d.records for d in store.debits()] == [150]  # the full reservation, as the kill left it
    with dep.running(engine):
        pass
    with BudgetStore(dep.config.budget_db) as store:
        assert [d.records for d in store.debits()] == [64]
    settled = [json.loads(line) for line in (tmp_path / "audit" / "log.jsonl").read_text().splitlines()
               if '"budget_settled"' in line]
    assert [(e["reserved"], e["records"]) for e in settled] == [(150, 64)]
    check_budgets(dep.config.budget_db, tmp_path)


# --- holder index: the build's entries are written before its commit (issue 17, item 2) ---


def _index_cli(dep: Deployment, *extra: str) -> int:
    return main(["holder", "index", str(dep.root / "records.csv"), "--config", str(dep.config_path), "--quiet", *extra])


def _audited_digests(root: Path) -> set[str]:
    entries = [json.loads(line) for line in (root / "audit" / "log.jsonl").read_text().splitlines()]
    return {e["digest"] for e in entries if e["event"] == "index_built"}


def _live_digests(dep: Deployment) -> set[str]:
    return {f.digest.hex() for f in read_manifest(dep.config.index_dir).files.values()}


def _files(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("rotate", [False, True])
def test_a_build_whose_audit_entries_cannot_be_written_keeps_the_live_index(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], rotate: bool) -> None:
    extra = ("--rotate-key",) if rotate else ()
    with audit_disk(tmp_path, monkeypatch) as disk:
        dep = make_deployment(tmp_path, records=50)
        write_records(dep.root / "records.csv", range(60))  # a different build: new index files
        key_before, index_before = dep.config.key_file.read_bytes(), _files(dep.config.index_dir)
        disk.fill()
        assert _index_cli(dep, *extra) == 1
        err = capsys.readouterr().err
        assert "cannot write the build's entries to the audit log" in err and "the live index was not replaced" in err
        assert dep.config.key_file.read_bytes() == key_before and _files(dep.config.index_dir) == index_before
        assert not next_key_path(dep.config.key_file).exists()
        disk.free()
        assert _index_cli(dep, *extra) == 0
        assert read_manifest(dep.config.index_dir).records == 60
        assert _live_digests(dep) <= _audited_digests(tmp_path)


def test_a_crash_between_the_audit_entries_and_the_commit_leaves_no_unaudited_index(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dep = make_deployment(tmp_path, records=50)
    assert _index_cli(dep) == 0  # the live index, audited
    write_records(dep.root / "records.csv", range(60))
    real_replace = os.replace

    def power_cut_at_the_commit(src: object, dst: object) -> None:
        if Path(str(dst)) == dep.config.index_dir / MANIFEST_NAME:
            raise KeyboardInterrupt("simulated crash")
        real_replace(src, dst)  # type: ignore[arg-type]

    live = _live_digests(dep)
    monkeypatch.setattr(os, "replace", power_cut_at_the_commit)
    assert _index_cli(dep) == 130  # main() reports the interruption
    monkeypatch.undo()
    assert _live_digests(dep) == live <= _audited_digests(tmp_path)  # the old index, audited
    assert len(_audited_digests(tmp_path)) == 2 * len(live)  # the new one was audited before its commit
    assert verify_log(tmp_path).ok


def test_a_failed_first_build_leaves_no_key_and_no_index(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    with audit_disk(tmp_path, monkeypatch) as disk:
        dep = make_deployment(tmp_path, records=20)
        dep.config.key_file.unlink()
        shutil.rmtree(dep.config.index_dir)  # as before the first build
        disk.fill()
        assert _index_cli(dep) == 1
        assert "the live index was not replaced" in capsys.readouterr().err
        assert not dep.config.key_file.exists() and not dep.config.index_dir.exists()
        disk.free()
        assert _index_cli(dep) == 0
        assert _live_digests(dep) <= _audited_digests(tmp_path)


def test_a_download_whose_entry_cannot_be_written_never_gets_its_last_chunk(
        tmp_path: Path, engine: BatchEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    dep = make_deployment(tmp_path, records=50)
    with dep.running(engine) as daemon, dep.channel(daemon.port) as ch:
        stub = pb_grpc.HolderStub(ch)
        info = stub.GetInfo(pb.GetInfoRequest())
        membership = next(i for i in info.indexes if i.kind == pb.MODE_MEMBERSHIP)

        def full(fd: int, data: bytes) -> None:
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(audit_log, "_write_all", full)  # the audit disk is full
        received = []
        with pytest.raises(grpc.RpcError) as failed:
            for chunk in stub.DownloadIndex(pb.DownloadIndexRequest(kind=pb.MODE_MEMBERSHIP, digest=membership.digest)):
                received.append(chunk)
        assert reason_from_rpc_error(failed.value) == "audit_unavailable"
        assert received and not any(c.digest for c in received)  # the chunk that ends it was never sent
        assert sum(len(c.data) for c in received) < membership.size_bytes
        monkeypatch.undo()
        assert download(stub, Mode.MEMBERSHIP).digest == membership.digest
    downloads = [json.loads(line) for line in (tmp_path / "audit" / "log.jsonl").read_text().splitlines()]
    assert [e["bytes"] for e in downloads if e["event"] == "index_downloaded"] == [membership.size_bytes]


def test_a_holder_that_cannot_audit_its_start_never_serves(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    dep = make_deployment(tmp_path, records=20)

    def full(fd: int, data: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(audit_log, "_write_all", full)
    assert main(["holder", "serve", "--config", str(dep.config_path)]) == 1
    out, err = capsys.readouterr()
    assert "listening" not in out and "No space left on device" in err and "Traceback" not in err


def test_a_budget_store_failing_under_a_running_holder_sends_no_exception_text(
        tmp_path: Path, engine: BatchEngine, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    dep = make_deployment(tmp_path, records=20)

    def malformed(*args: object, **kwargs: object) -> None:
        raise sqlite3.DatabaseError("database disk image is malformed")

    with dep.running(engine) as daemon, dep.channel(daemon.port) as ch:
        stub = pb_grpc.HolderStub(ch)
        monkeypatch.setattr(BudgetStore, "remaining", malformed)
        with pytest.raises(grpc.RpcError) as failed:
            stub.GetInfo(pb.GetInfoRequest())
        monkeypatch.undo()
        assert failed.value.code() is grpc.StatusCode.INTERNAL and reason_from_rpc_error(failed.value) == "internal"
        assert "malformed" not in failed.value.details()  # it was 'UNKNOWN: Exception calling application: ...'
        assert "database disk image is malformed" in caplog.text  # the holder's own log has it
        stub.GetInfo(pb.GetInfoRequest())
