"""Index building on a Dask LocalCluster gives the same bytes as the single-process builder."""

from __future__ import annotations

import pytest

pytest.importorskip("distributed")

from blindmatch.bench.data import holder_key_chunks
from blindmatch.core.index import EncryptedIndex
from blindmatch.core.index_builder import IndexBuilder
from blindmatch.core.keys import HolderKey
from blindmatch.core.purpose import evaluation_info
from blindmatch.crypto import poprf
from blindmatch.crypto.batch import BatchEngine
from blindmatch.holder.cluster_index import ClusterIndexBuilder
from blindmatch.vocabulary import Mode

FINGERPRINT = bytes(range(32))
ORG = "Example County"


@pytest.mark.timeout(120)
def test_cluster_build_matches_local_build() -> None:
    from distributed import Client, LocalCluster

    key = HolderKey(bytes([7]) + bytes(31))
    engine = BatchEngine(1)
    builder = IndexBuilder(key, FINGERPRINT, engine, ORG)
    for chunk in holder_key_chunks(700, 5, chunk=128):
        builder.add(chunk)
    expected = builder.finish()
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, Client(cluster) as client:
        with ClusterIndexBuilder(key, FINGERPRINT, client, ORG, max_in_flight=2) as on_client:
            got = on_client.build(holder_key_chunks(700, 5, chunk=128))
        with ClusterIndexBuilder(key, FINGERPRINT, cluster.scheduler_address, ORG, kinds=(Mode.CARDINALITY,)) as by_name:
            by_address = by_name.build(holder_key_chunks(700, 5, chunk=300))
    assert got == expected
    assert by_address == {Mode.CARDINALITY: expected[Mode.CARDINALITY]}
    index = EncryptedIndex.parse(got[Mode.MEMBERSHIP])
    first = next(holder_key_chunks(3, 5))
    info = evaluation_info(ORG, Mode.MEMBERSHIP, key.key_id)
    assert index.contains(b"".join(poprf.evaluate(key.sk, k, info) for k in first)).all()


@pytest.mark.timeout(120)
def test_holder_index_cli_on_cluster_equals_local_build(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """``blindmatch holder index --cluster ADDRESS`` commits the same indexes as a local build."""
    import shutil

    from distributed import LocalCluster
    from helpers.holder_deployment import make_deployment

    from blindmatch.cli.main import main
    from blindmatch.holder.store import open_indexes

    dep = make_deployment(tmp_path, records=120)
    config = dep.config
    local = open_indexes(config.index_dir)
    try:
        expected = {kind: f.digest for kind, f in local.manifest.files.items()}
    finally:
        local.close()
    shutil.rmtree(config.index_dir)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        code = main(["holder", "index", str(dep.root / "records.csv"), "--config", str(dep.config_path),
                     "--cluster", cluster.scheduler_address, "--quiet"])
    assert code == 0
    rebuilt = open_indexes(config.index_dir)
    try:
        assert {kind: f.digest for kind, f in rebuilt.manifest.files.items()} == expected
    finally:
        rebuilt.close()
