"""Each OPRF key answers at most ``key_evaluation_cap`` elements in all, across restarts."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from helpers.holder_deployment import (
    make_deployment,
)

from blindmatch.crypto.batch import BatchEngine
from blindmatch.holder.index_build import build_index
from blindmatch.transport.status import reason_from_rpc_error
from blindmatch.v1 import holder_pb2_grpc as pb_grpc
from blindmatch.vocabulary import Mode


def test_a_spent_key_is_refused_until_it_is_rotated(tmp_path: Path, engine: BatchEngine) -> None:
    dep = make_deployment(tmp_path, records=60, limits="key_evaluation_cap = 25")
    with dep.running(engine) as daemon, dep.channel(daemon.port) as ch:
        stub = pb_grpc.HolderStub(ch)
        session, envelope = dep.signed_session(stub, engine, range(15), Mode.MEMBERSHIP)  # 15 elements
        dep.run_match(stub, session, envelope)
        # A session the policy refuses evaluates nothing and uses none of the cap.
        unsigned, _ = dep.signed_session(stub, engine, range(10), Mode.MEMBERSHIP)
        with pytest.raises(grpc.RpcError):
            dep.run_match(stub, unsigned, b"not a signed request")
        assert daemon.runtime.key_usage.used(daemon.runtime.key.key_id) == 15
        session, envelope = dep.signed_session(stub, engine, range(10), Mode.MEMBERSHIP)  # 10 more: exactly the cap
        dep.run_match(stub, session, envelope)
    with dep.running(engine) as daemon, dep.channel(daemon.port) as ch:  # the count survives a restart
        stub = pb_grpc.HolderStub(ch)
        session, envelope = dep.signed_session(stub, engine, range(1), Mode.MEMBERSHIP)
        with pytest.raises(grpc.RpcError) as refused:
            dep.run_match(stub, session, envelope)
        assert refused.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert reason_from_rpc_error(refused.value) == "key_spent"
        assert "lifetime cap of 25 evaluations" in (refused.value.details() or "")
    build_index(tmp_path / "records.csv", dep.config, progress=False, rotate_key=True)
    with dep.running(engine) as daemon, dep.channel(daemon.port) as ch:  # a new key starts afresh
        stub = pb_grpc.HolderStub(ch)
        session, envelope = dep.signed_session(stub, engine, range(5), Mode.MEMBERSHIP)
        dep.run_match(stub, session, envelope)
        assert session.closed
