"""The probes of issue 15 against a real holder over loopback mTLS: idle streams, many
connections, undecodable and oversized messages, loose key files and TLS 1.2."""

from __future__ import annotations

import os
import queue
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from helpers.holder_deployment import (
    HOLDER_ORG,
    REQUESTER_ORG,
    Deployment,
    make_deployment,
)
from helpers.tls12 import unary_over_tls12

from blindmatch.crypto.batch import BatchEngine
from blindmatch.holder.capacity import server_options
from blindmatch.holder.config import HolderLimits
from blindmatch.holder.service import HolderDaemon
from blindmatch.holder.store import StoreError
from blindmatch.requester.config import HolderEndpoint
from blindmatch.requester.holder_client import HolderClient
from blindmatch.transport.pki import PkiError, init_pki, slug
from blindmatch.transport.status import reason_from_rpc_error
from blindmatch.v1 import holder_pb2 as pb
from blindmatch.v1 import holder_pb2_grpc as pb_grpc
from blindmatch.vocabulary import Mode

GET_INFO = "/blindmatch.v1.Holder/GetInfo"
MATCH = "/blindmatch.v1.Holder/Match"
HEALTH_CHECK = "/grpc.health.v1.Health/Check"
MAX_MESSAGE = 1_048_576  # the default limit, as the probe met it


@pytest.fixture(scope="module")
def holder(engine: BatchEngine) -> Iterator[tuple[Deployment, HolderDaemon]]:
    with tempfile.TemporaryDirectory() as tmp:
        dep = make_deployment(Path(tmp), records=20, limits="hello_timeout_seconds = 3\nidle_timeout_seconds = 3\n")
        text = dep.config_path.read_text().replace("max_message_bytes = 24576", f"max_message_bytes = {MAX_MESSAGE}")
        dep.config_path.write_text(text + '[holder.metrics]\nlisten = "127.0.0.1:0"\n')
        with dep.running(engine) as daemon:
            yield dep, daemon


def _health(ch: grpc.Channel) -> int:
    status: int = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service=""), timeout=1).status
    return status


def test_idle_match_streams_do_not_starve_get_info_or_health(holder: tuple[Deployment, HolderDaemon]) -> None:
    """20 Match streams that never send a Hello: the slots fill (8), the rest are told ``busy``,
    GetInfo and health answer within 1 s throughout, and the held streams end ``idle_timeout``."""
    dep, daemon = holder
    with dep.channel(daemon.port) as ch:
        stub = pb_grpc.HolderStub(ch)
        silent: queue.Queue[pb.MatchClientMessage | None] = queue.Queue()
        calls = [stub.Match(iter(silent.get, None)) for _ in range(20)]
        outcomes: queue.Queue[grpc.RpcError] = queue.Queue()

        def drain(call: grpc.RpcError) -> None:
            try:
                list(call)  # type: ignore[call-overload]
            except grpc.RpcError as exc:
                outcomes.put(exc)

        threads = [threading.Thread(target=drain, args=(c,)) for c in calls]
        for t in threads:
            t.start()
        busy = [outcomes.get(timeout=10) for _ in range(12)]
        assert {(e.code(), reason_from_rpc_error(e)) for e in busy} == {(grpc.StatusCode.RESOURCE_EXHAUSTED, "busy")}
        assert daemon.servicer.match_slots.in_use(REQUESTER_ORG) == 8
        for _ in range(10):  # while all 8 slots are held by silent peers
            started = time.monotonic()
            stub.GetInfo(pb.GetInfoRequest(), timeout=1)
            assert _health(ch) == health_pb2.HealthCheckResponse.SERVING
            assert time.monotonic() - started < 1.0
            time.sleep(0.1)
        idle = [outcomes.get(timeout=10) for _ in range(8)]
        for t in threads:
            t.join(timeout=5)
        assert {(e.code(), reason_from_rpc_error(e)) for e in idle} == {(grpc.StatusCode.DEADLINE_EXCEEDED, "idle_timeout")}
        assert daemon.servicer.match_slots.in_use() == 0


def _endpoint(dep: Deployment, daemon: HolderDaemon) -> HolderEndpoint:
    org = dep.pki / slug(REQUESTER_ORG)
    return HolderEndpoint(address=f"127.0.0.1:{daemon.port}", name="holder", organisation=HOLDER_ORG,
                          oprf_public_key=daemon.runtime.key.public_key, audit_public_key=daemon.runtime.audit.public_key,
                          ca_cert=dep.pki / "ca.crt",
                          cert=org / "client.crt", key=org / "client.key", server_name=None,
                          retry_seconds=60, batch_timeout_seconds=30)


@pytest.mark.slow
def test_hundred_connections_of_five_get_info_calls_all_succeed(holder: tuple[Deployment, HolderDaemon]) -> None:
    """The holder may answer RESOURCE_EXHAUSTED under the burst; the client retries it with backoff."""
    dep, daemon = holder
    endpoint = _endpoint(dep, daemon)
    start = threading.Barrier(100)

    def one_connection(_: int) -> int:
        with HolderClient(endpoint) as client:
            start.wait()
            return sum(1 for _ in range(5) if client.info().key_id)

    with ThreadPoolExecutor(100) as pool:
        answered = list(pool.map(one_connection, range(100)))
    assert sum(answered) == 500


def _raw_error(ch: grpc.Channel, method: str, body: bytes, streaming: bool = False) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        if streaming:
            list(ch.stream_stream(method)(iter([body]), timeout=10))
        else:
            ch.unary_unary(method)(body, timeout=10)
    return info.value


@pytest.mark.parametrize(("method", "streaming"), [(GET_INFO, False), (MATCH, True), (HEALTH_CHECK, False)])
def test_undecodable_message_is_invalid_argument_with_a_reason(holder: tuple[Deployment, HolderDaemon],
                                                               method: str, streaming: bool) -> None:
    dep, daemon = holder
    with dep.channel(daemon.port) as ch:
        error = _raw_error(ch, method, b"\xff\xff\xff\xff garbage, not a protobuf", streaming)
        assert error.code() is grpc.StatusCode.INVALID_ARGUMENT, error.details()
        assert reason_from_rpc_error(error) == "bad_request"
        pb_grpc.HolderStub(ch).GetInfo(pb.GetInfoRequest(), timeout=5)  # still serving


@pytest.mark.parametrize(("method", "streaming"), [(GET_INFO, False), (MATCH, True)])
def test_two_mib_message_is_resource_exhausted_with_a_reason(holder: tuple[Deployment, HolderDaemon],
                                                             method: str, streaming: bool) -> None:
    dep, daemon = holder
    big = 2 * 1024 * 1024
    body = (pb.GetInfoRequest(official="x" * big) if not streaming else
            pb.MatchClientMessage(blinded=pb.ElementBatch(seq=0, elements=bytes(big)))).SerializeToString()
    with dep.channel(daemon.port) as ch:
        error = _raw_error(ch, method, body, streaming)
        assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED, error.details()
        assert reason_from_rpc_error(error) == "limit_exceeded"
        assert str(MAX_MESSAGE) in (error.details() or "")


@pytest.mark.parametrize("method", [GET_INFO, HEALTH_CHECK])
def test_tls12_connection_is_refused_on_every_call(holder: tuple[Deployment, HolderDaemon], method: str) -> None:
    dep, daemon = holder
    org = dep.pki / slug(REQUESTER_ORG)
    trailers = unary_over_tls12(daemon.port, method, b"", dep.pki / "ca.crt", org / "client.crt", org / "client.key")
    assert trailers.get("grpc-status") == str(grpc.StatusCode.UNAUTHENTICATED.value[0]), trailers
    assert trailers.get("blindmatch-reason") == "tls_version"


def test_tls_key_readable_by_others_is_refused(tmp_path: Path) -> None:
    dep = make_deployment(tmp_path, records=5)
    key = dep.config.tls.key
    os.chmod(key, 0o644)
    with pytest.raises(StoreError, match=rf"TLS key {key} is accessible by group or others \(mode 0644\); run chmod 600"):
        HolderDaemon.from_config(dep.config)


def test_ca_key_readable_by_others_is_refused(tmp_path: Path) -> None:
    init_pki(tmp_path, ["First Org"], ["localhost"])
    os.chmod(tmp_path / "ca.key", 0o640)
    with pytest.raises(PkiError, match=r"CA key .*ca.key is accessible by group or others \(mode 0640\); run chmod 600"):
        init_pki(tmp_path, ["Second Org"], ["localhost"])


def _scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
            if line and not line.startswith("#")}


def test_metrics_count_sessions_refusals_evaluations_and_budget(holder: tuple[Deployment, HolderDaemon],
                                                                engine: BatchEngine) -> None:
    dep, daemon = holder
    assert daemon.metrics_port
    before = _scrape(daemon.metrics_port)
    with dep.channel(daemon.port) as ch:
        stub = pb_grpc.HolderStub(ch)
        session, envelope = dep.signed_session(stub, engine, range(10), Mode.MEMBERSHIP)
        dep.run_match(stub, session, envelope)
        day_left = stub.GetInfo(pb.GetInfoRequest(), timeout=5).budget.organisation_day_remaining
    after = _scrape(daemon.metrics_port)

    def grew(name: str) -> float:
        return after.get(name, 0) - before.get(name, 0)

    assert grew('blindmatch_holder_sessions_total{outcome="closed"}') == 1
    assert grew("blindmatch_holder_evaluated_elements_total") == session.element_count
    assert grew('blindmatch_holder_session_seconds_count{outcome="closed"}') == 1
    assert after[f'blindmatch_holder_budget_remaining_records{{organisation="{REQUESTER_ORG}",window="day"}}'] == day_left
    assert after['blindmatch_holder_call_seconds_count{method="GetInfo"}'] >= 1
    assert after.get('blindmatch_holder_refusals_total{reason="busy"}', 0) >= 12  # from the idle-stream probe


def test_health_watch_streams_are_bounded(holder: tuple[Deployment, HolderDaemon]) -> None:
    """Watch lasts as long as the watcher likes: beyond two, it is ``busy``; Check still answers."""
    dep, daemon = holder
    with dep.channel(daemon.port) as ch:
        stub = health_pb2_grpc.HealthStub(ch)
        watches = [stub.Watch(health_pb2.HealthCheckRequest(service="")) for _ in range(2)]
        for watch in watches:
            assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.RpcError) as third:
            next(stub.Watch(health_pb2.HealthCheckRequest(service="")))
        assert third.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert reason_from_rpc_error(third.value) == "busy"
        assert _health(ch) == health_pb2.HealthCheckResponse.SERVING
        for watch in watches:
            watch.cancel()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # the slots come back once the calls end
            try:
                next(stub.Watch(health_pb2.HealthCheckRequest(service=""), timeout=2))
                break
            except grpc.RpcError:
                time.sleep(0.1)
        else:
            pytest.fail("a cancelled Watch kept its slot")


def test_server_options_allow_requester_keepalive() -> None:
    """Requesters ping every 20 s during calls (none outside); the holder pings a silent peer every 30 s."""
    options = dict(server_options(HolderLimits()))
    assert options["grpc.http2.min_ping_interval_without_data_ms"] <= 10_000
    assert options["grpc.keepalive_permit_without_calls"] == 0
    assert (options["grpc.keepalive_time_ms"], options["grpc.keepalive_timeout_ms"]) == (30_000, 10_000)
    assert options["grpc.so_reuseport"] == 0
