"""Which indexes an organisation may download: those of the modes its officials hold now.

An organisation limited to cardinality mode must not hold the membership index (SPEC.md
section 6): the holder's GetInfo lists, and DownloadIndex serves, only the kinds some
official of the organisation may use at the daemon's clock.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest
from helpers.holder_deployment import download, make_deployment

from blindmatch.crypto.batch import BatchEngine
from blindmatch.transport.status import reason_from_rpc_error
from blindmatch.v1 import holder_pb2 as pb
from blindmatch.v1 import holder_pb2_grpc as pb_grpc
from blindmatch.vocabulary import Mode

pytestmark = pytest.mark.timeout(60)


def _only_cardinality_is_served(holder: pb_grpc.HolderStub) -> None:
    assert [i.kind for i in holder.GetInfo(pb.GetInfoRequest()).indexes] == [pb.MODE_CARDINALITY]
    with pytest.raises(grpc.RpcError) as err:
        list(holder.DownloadIndex(pb.DownloadIndexRequest(kind=pb.MODE_MEMBERSHIP)))
    assert err.value.code() is grpc.StatusCode.PERMISSION_DENIED
    assert reason_from_rpc_error(err.value) == "mode_not_allowed"


def test_index_kinds_follow_the_officials_modes(tmp_path: Path, engine: BatchEngine) -> None:
    """An organisation whose officials may not use membership mode never receives that index."""
    dep = make_deployment(tmp_path, records=30)
    policy = dep.root / "policy.toml"
    policy.write_text(policy.read_text().replace('modes = ["membership"]', 'modes = ["cardinality"]')
                      .replace('modes = ["membership", "cardinality"]', 'modes = ["cardinality"]'))
    with dep.running(engine) as daemon, dep.channel(daemon.port) as ch:
        holder = pb_grpc.HolderStub(ch)
        _only_cardinality_is_served(holder)
        assert download(holder, Mode.CARDINALITY).kind is Mode.CARDINALITY


def test_expired_officials_grant_no_index(tmp_path: Path, engine: BatchEngine) -> None:
    """An organisation whose membership officials' mandates ended may no longer download that index."""
    dep = make_deployment(tmp_path, records=30)
    policy = dep.root / "policy.toml"
    ended = re.sub(r'valid_until = 2099-01-01T00:00:00Z\nmodes = \["membership"\]',
                   'valid_until = 2021-01-01T00:00:00Z\nmodes = ["membership"]', policy.read_text())
    policy.write_text(ended.replace('modes = ["membership", "cardinality"]', 'modes = ["cardinality"]'))
    with dep.running(engine) as daemon, dep.channel(daemon.port) as ch:
        holder = pb_grpc.HolderStub(ch)
        _only_cardinality_is_served(holder)
        # The daemon's clock decides: before 2021 the mandates were in force.
        daemon.runtime.clock = lambda: datetime(2020, 6, 1, tzinfo=UTC)
        assert {i.kind for i in holder.GetInfo(pb.GetInfoRequest()).indexes} == {pb.MODE_MEMBERSHIP, pb.MODE_CARDINALITY}
