"""``blindmatch bench`` on small sizes: JSON keys, match counts, prebuilt and gRPC transports."""

from __future__ import annotations

import json

import pytest

from blindmatch.bench.data import holder_key_chunks, query_keys
from blindmatch.bench.rss import peak_rss_bytes
from blindmatch.cli.main import main
from blindmatch.core.index import HEADER_BYTES

REQUIRED = {
    "holder_records", "queries", "matches", "index_build_seconds", "session_seconds", "total_seconds",
    "index_bytes", "false_match_bound", "bytes_up", "bytes_down", "peak_rss_holder_bytes", "peak_rss_requester_bytes",
}


def _run(capsys, *argv: str) -> dict:
    assert main(["bench", *argv, "--json"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    return json.loads(out[-1])


def test_bench_json_membership(capsys) -> None:
    r = _run(capsys, "--holder", "1024", "--queries", "2^10")
    assert r.keys() >= REQUIRED
    assert r["holder_records"] == 1024 and r["queries"] == 1024
    assert r["matches"] == 512
    # The requester blinds while the holder builds: the total is one wall-clock span over both.
    assert r["session_seconds"] <= r["total_seconds"] <= r["wall_seconds"]
    assert r["index_build_seconds"] <= r["total_seconds"]
    assert r["phases"]["requester"]["blind"] > 0
    assert r["cpu_seconds"]["total"] >= r["cpu_seconds"]["holder_build"] + r["cpu_seconds"]["online"]
    assert r["index_bytes"] == HEADER_BYTES + (2 * 1024 + 7) // 8 + 8 * 1024  # header + 2n bits + 64 bits per entry
    assert 0 < r["false_match_bound"] < 2**-40
    assert r["bytes_up"] >= 32 * 1024 and r["bytes_down"] >= 32 * 1024 + r["index_bytes"]
    assert r["peak_rss_holder_bytes"] > 10 * 2**20 and r["peak_rss_requester_bytes"] > 10 * 2**20


def test_bench_cardinality_small_batches(capsys) -> None:
    r = _run(capsys, "--holder", "300", "--queries", "100", "--mode", "cardinality", "--batch-size", "32", "--workers", "1")
    assert r["matches"] == 50 and r["mode"] == "cardinality"


def test_bench_prebuilt_reuses_index(capsys, tmp_path) -> None:
    args = ("--holder", "512", "--queries", "256", "--index", "prebuilt", "--index-dir", str(tmp_path))
    first = _run(capsys, *args)
    assert first["matches"] == 128 and first["index_build_seconds"] == 0.0
    assert first["session_seconds"] == first["total_seconds"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["n512-s1-membership-poprf1.bmidx", "n512-s1-poprf1.json"]
    second = _run(capsys, *args)
    assert second["matches"] == 128 and second["index_bytes"] == first["index_bytes"]


def test_bench_on_tokens_matches_like_on_keys(capsys, tmp_path) -> None:
    """``--inputs tokens``: the index over, and the queries as, eligibility tokens of the same keys."""
    args = ("--holder", "512", "--queries", "256", "--index", "prebuilt", "--index-dir", str(tmp_path))
    keys, tokens = _run(capsys, *args), _run(capsys, *args, "--inputs", "tokens")
    assert tokens["inputs"] == "tokens" and tokens["matches"] == keys["matches"] == 128
    assert tokens["index_bytes"] == keys["index_bytes"]
    assert "n512-s1-membership-poprf1-tokens.bmidx" in {p.name for p in tmp_path.iterdir()}
    chunk = next(holder_key_chunks(4, 1, tokens=True))
    assert [len(t) for t in chunk] == [64] * 4 and chunk != next(holder_key_chunks(4, 1))


def test_bench_grpc_agrees_with_local(capsys) -> None:
    from blindmatch.bench import grpc_transport

    if not grpc_transport.available():
        pytest.skip("the gRPC daemons are not in this tree yet")
    local = _run(capsys, "--holder", "1024", "--queries", "1024")
    remote = _run(capsys, "--holder", "1024", "--queries", "1024", "--transport", "grpc")
    assert remote["matches"] == local["matches"] == 512
    assert remote["index_bytes"] == local["index_bytes"]


def test_bench_rejects_bad_counts(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["bench", "--holder", "0", "--queries", "4"])


def test_query_keys_have_half_matches() -> None:
    holder = {k for chunk in holder_key_chunks(1000, 3, chunk=64) for k in chunk}
    keys, expected = query_keys(1000, 600, 3)
    assert expected == 300 and len(set(keys)) == 600
    assert sum(k in holder for k in keys) == 300


def test_peak_rss_is_read() -> None:
    assert peak_rss_bytes() > 2**20


def test_floor_measurement_small() -> None:
    from blindmatch.bench.floor import measure_floor

    result = measure_floor(count=600, workers=2, repeats=1)
    assert result["threads"] == 2
    assert result["median_per_second"]["floor"] > 0
    assert result["blind_evaluate_slowdown_vs_floor"] > 0


def test_openmined_runner_small() -> None:
    pytest.importorskip("private_set_intersection.python")
    from blindmatch.bench.openmined import run_openmined

    result = run_openmined(256, 64)
    assert result["matches"] == result["expected_matches"] == 32
    assert result["bytes_up"] > 0 and result["setup_bytes"] > 0
