"""The benchmark sweep: blindmatch and OpenMined PSI on the same sizes, same machine, same run.

    python benchmarks/sweep.py                 # full sweep (about 20 min on 2 cores)
    python benchmarks/sweep.py --quick         # small sizes only (seconds)
    python benchmarks/plot.py                  # plots from benchmarks/results/sweep.json

Grid (holder records N, queries M), skipping redundant points of the full 2^10..2^20 x
2^10..2^16 rectangle:
  * diagonal      N = M           in 2^10, 2^12, 2^14, 2^16
  * fixed M       M = 2^10,       N in 2^10, 2^12, ..., 2^20
  * fixed N       N = 2^20,       M in 2^10, 2^12, 2^14, 2^16
Each point runs ``blindmatch bench`` (full protocol: index build + session, local
transport, holder and requester in separate processes) and then one OpenMined PSI
exchange (GCS setup, fpr 2^-40, reveal_intersection) on the same inputs.

Speed targets (issue item 3), repeated ``--repeats`` times with blindmatch and OpenMined
interleaved, ratios of medians:
  * balanced N = M = 2^14 and 2^16: blindmatch total / OpenMined total <= 0.5
  * prebuilt index, N = 2^20, M = 2^14: one blindmatch session / OpenMined full run <= 0.05
  * holder evaluation throughput vs the libsodium floor (benchmarks: blindmatch.bench.floor)

Results go to ``benchmarks/results/sweep.jsonl`` (one line per run, appended as they
finish, so a partial sweep is kept) and ``benchmarks/results/sweep.json`` (everything
plus the summary of the targets).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from blindmatch.bench import openmined
from blindmatch.bench.common import BenchConfig, machine_info
from blindmatch.bench.floor import measure_floor
from blindmatch.bench.harness import run_bench

RESULTS = Path(__file__).parent / "results"


def grid(quick: bool) -> list[tuple[int, int, str]]:
    if quick:
        diag, ns, ms, n_fixed, m_fixed = [10, 11], [10, 11, 12], [10, 11], 12, 10
    else:
        diag, ns, ms, n_fixed, m_fixed = [10, 12, 14, 16], [10, 12, 14, 16, 18, 20], [10, 12, 14, 16], 20, 10
    points: dict[tuple[int, int], list[str]] = {}
    for e in diag:
        points.setdefault((2**e, 2**e), []).append("diagonal")
    for e in ns:
        points.setdefault((2**e, 2**m_fixed), []).append("fixed_m")
    for e in ms:
        points.setdefault((2**n_fixed, 2**e), []).append("fixed_n")
    return sorted(((n, m, "+".join(lines)) for (n, m), lines in points.items()), key=lambda p: (p[0] + 2 * p[1]))


def log(line: str) -> None:
    print(time.strftime("%H:%M:%S"), line, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=3, help="runs per target point")
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument("--index-dir", default="/tmp/blindmatch-bench-sweep")
    parser.add_argument("--skip-grid", action="store_true", help="only the target measurements")
    parser.add_argument("--tag", default=None, help="name the outputs sweep-TAG.json(l) instead of sweep.json(l)")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"sweep-{args.tag}" if args.tag else ("sweep-quick" if args.quick else "sweep")
    jsonl = out / f"{stem}.jsonl"
    if not openmined.available():
        print("OpenMined PSI is not installed (pip install --no-deps openmined-psi): comparison skipped", file=sys.stderr)
    started = time.time()
    records: list[dict] = []

    def emit(kind: str, **record) -> dict:
        record = {"kind": kind, **record}
        records.append(record)
        with jsonl.open("a") as fh:
            fh.write(json.dumps(record, sort_keys=True) + "\n")
        return record

    def both(n: int, m: int, line: str, rep: int = 0) -> None:
        bm = run_bench(BenchConfig(n, m))
        log(f"blindmatch N={n} M={m}: total {bm['total_seconds']:.2f} s (build {bm['index_build_seconds']:.2f}, "
            f"session {bm['session_seconds']:.2f}), matches {bm['matches']}/{bm['expected_matches']}")
        emit("blindmatch", line=line, repeat=rep, **bm)
        if openmined.available():
            om = openmined.run_openmined(n, m)
            log(f"openmined  N={n} M={m}: total {om['total_seconds']:.2f} s (setup {om['setup_seconds']:.2f}), "
                f"matches {om['matches']}/{om['expected_matches']}; ratio {bm['total_seconds'] / om['total_seconds']:.3f}")
            emit("openmined", line=line, repeat=rep, **om)

    emit("machine", started=started, **machine_info())
    fl = measure_floor(count=1 << (12 if args.quick else 15))
    log(f"floor: {fl['median_per_second']['floor']:.0f} mult/s; blind_evaluate x{fl['blind_evaluate_slowdown_vs_floor']:.3f}, "
        f"evaluate_elements x{fl['evaluate_elements_slowdown_vs_floor']:.3f}, index build x{fl['index_build_slowdown_vs_floor']:.3f}")
    emit("floor", **fl)

    if not args.skip_grid:
        for n, m, line in grid(args.quick):
            both(n, m, line)

    # Target points, repeated (the grid run above counts as repeat 0 where it exists).
    balanced = [2**10, 2**11] if args.quick else [2**14, 2**16]
    for rep in range(1, args.repeats):
        for size in balanced:
            both(size, size, "target_balanced", rep)
    big_n, big_m = (2**12, 2**10) if args.quick else (2**20, 2**14)
    cfg = BenchConfig(big_n, big_m, index="prebuilt", index_dir=args.index_dir)
    for rep in range(args.repeats):
        bm = run_bench(cfg)
        log(f"prebuilt N={big_n} M={big_m}: session {bm['session_seconds']:.2f} s, matches {bm['matches']}/{bm['expected_matches']}")
        emit("blindmatch_prebuilt", line="target_prebuilt", repeat=rep, **bm)
    if openmined.available() and (args.skip_grid or args.repeats > 1):
        om = openmined.run_openmined(big_n, big_m)
        log(f"openmined  N={big_n} M={big_m}: total {om['total_seconds']:.2f} s (setup {om['setup_seconds']:.2f})")
        emit("openmined", line="target_prebuilt", repeat=1, **om)

    summary = summarise(records, balanced, (big_n, big_m))
    (out / f"{stem}.json").write_text(
        json.dumps({"summary": summary, "records": records}, indent=1, sort_keys=True) + "\n"
    )
    log("summary: " + json.dumps(summary, indent=1))
    return 0


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def summarise(records: list[dict], balanced: list[int], big: tuple[int, int]) -> dict:
    def runs(kind: str, n: int, m: int, key: str) -> list[float]:
        return [r[key] for r in records if r["kind"] == kind and r["holder_records"] == n and r["queries"] == m]

    s: dict = {"targets": {}}
    for size in balanced:
        bm = runs("blindmatch", size, size, "total_seconds")
        om = runs("openmined", size, size, "total_seconds")
        entry = {"blindmatch_total_seconds": bm, "openmined_total_seconds": om}
        if bm and om:
            entry["ratio_of_medians"] = _median(bm) / _median(om)
            entry["target"] = 0.5
            entry["met"] = entry["ratio_of_medians"] <= 0.5
        s["targets"][f"balanced_{size}"] = entry
    n, m = big
    sess = runs("blindmatch_prebuilt", n, m, "session_seconds")
    om = runs("openmined", n, m, "total_seconds")
    entry = {"blindmatch_session_seconds": sess, "openmined_total_seconds": om,
             "openmined_setup_seconds": runs("openmined", n, m, "setup_seconds")}
    if sess and om:
        entry["ratio_of_medians"] = _median(sess) / _median(om)
        entry["target"] = 0.05
        entry["met"] = entry["ratio_of_medians"] <= 0.05
    s["targets"][f"prebuilt_{n}_{m}"] = entry
    floors = [r for r in records if r["kind"] == "floor"]
    if floors:
        f = floors[-1]
        s["targets"]["holder_evaluation_vs_floor"] = {
            "floor_mult_per_second": f["median_per_second"]["floor"],
            "blind_evaluate_per_second": f["median_per_second"]["blind_evaluate"],
            "blind_evaluate_slowdown": f["blind_evaluate_slowdown_vs_floor"],
            "index_build_per_second": f["median_per_second"]["index_build"],
            "index_build_slowdown": f["index_build_slowdown_vs_floor"],
            "target": 1.25,
            "met_blind_evaluate": f["blind_evaluate_slowdown_vs_floor"] <= 1.2,
            "met_index_build": f["index_build_slowdown_vs_floor"] <= 1.25,
        }
    return s


if __name__ == "__main__":
    sys.exit(main())
