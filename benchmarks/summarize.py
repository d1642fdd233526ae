"""Markdown tables from the committed results (pasted into benchmarks/README.md).

    python benchmarks/summarize.py
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
MIB = 2**20


def _med(values):
    return statistics.median(values) if values else float("nan")


def main() -> None:
    sweep = json.loads((RESULTS / "sweep.json").read_text())
    records = sweep["records"]
    machine = next(r for r in records if r["kind"] == "machine")
    print(f"Machine: {machine['cpu_model']}, nproc {machine['nproc']}, Python {machine['python']}, numpy {machine['numpy']}, "
          f"libsodium {machine['libsodium']} (rbcl {machine['rbcl']}), {machine['platform']}\n")
    grouped = defaultdict(lambda: defaultdict(list))
    for r in records:
        if r["kind"] in ("blindmatch", "openmined", "blindmatch_prebuilt"):
            grouped[(r["holder_records"], r["queries"])][r["kind"]].append(r)
    print("| N | M | blindmatch total s | (build / session) | OpenMined total s | (setup) | ratio | bm index B/record | OM setup B/record | bm B/query up+down | OM B/query up+down | bm peak RSS holder / requester MiB | OM peak RSS MiB | runs |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for (n, m), kinds in sorted(grouped.items()):
        bm, om = kinds.get("blindmatch", []), kinds.get("openmined", [])
        if not bm:
            continue
        t_bm = _med([r["total_seconds"] for r in bm])
        t_om = _med([r["total_seconds"] for r in om])
        row = [
            f"2^{n.bit_length() - 1}", f"2^{m.bit_length() - 1}", f"{t_bm:.2f}",
            f"{_med([r['index_build_seconds'] for r in bm]):.2f} / {_med([r['session_seconds'] for r in bm]):.2f}",
            f"{t_om:.2f}" if om else "-", f"{_med([r['setup_seconds'] for r in om]):.2f}" if om else "-",
            f"{t_bm / t_om:.3f}" if om else "-",
            f"{bm[0]['index_bytes'] / n:.3f}", f"{om[0]['setup_bytes_per_holder_record']:.3f}" if om else "-",
            f"{bm[0]['bytes_up_per_query']:.1f} + {bm[0]['bytes_down_per_query_excl_index']:.1f}",
            f"{om[0]['bytes_up_per_query']:.1f} + {om[0]['bytes_down_per_query_excl_setup']:.1f}" if om else "-",
            f"{max(r['peak_rss_holder_bytes'] for r in bm) / MIB:.0f} / {max(r['peak_rss_requester_bytes'] for r in bm) / MIB:.0f}",
            f"{max(r['peak_rss_bytes'] for r in om) / MIB:.0f}" if om else "-",
            f"{len(bm)}/{len(om)}",
        ]
        print("| " + " | ".join(row) + " |")
    print()
    for (n, m), kinds in sorted(grouped.items()):
        pre = kinds.get("blindmatch_prebuilt", [])
        if pre:
            s = [r["session_seconds"] for r in pre]
            print(f"prebuilt N={n} M={m}: sessions {', '.join(f'{x:.2f}' for x in s)} s; lookup "
                  f"{_med([r['lookup_seconds_per_query'] for r in pre]) * 1e9:.0f} ns/query; parse "
                  f"{_med([r['phases']['requester']['parse'] for r in pre]):.3f} s; peak RSS holder "
                  f"{max(r['peak_rss_holder_bytes'] for r in pre) / MIB:.0f} MiB, requester {max(r['peak_rss_requester_bytes'] for r in pre) / MIB:.0f} MiB")
            ph = pre[0]["phases"]
            print("  phases of the first:", json.dumps({k: {kk: round(vv, 3) for kk, vv in v.items()} for k, v in ph.items()}))
    print()
    print("Targets:", json.dumps(sweep["summary"]["targets"], indent=1))
    for name in ("memory_1e7.json", "encode_memory.json"):
        path = RESULTS / name
        if path.exists():
            doc = json.loads(path.read_text())
            if name == "memory_1e7.json":
                print(f"\n10^7 records: build {doc['build']['index_build_seconds']:.0f} s, peak RSS build "
                      f"{doc['peak_rss_build_bytes'] / MIB:.0f} MiB, holder serve {doc['peak_rss_holder_serve_bytes'] / MIB:.0f} MiB, "
                      f"requester (download + parse + session) {doc['peak_rss_requester_bytes'] / MIB:.0f} MiB; "
                      f"session {doc['session']['session_seconds']:.2f} s, parse {doc['session']['phases']['requester']['parse']:.3f} s, "
                      f"lookup {doc['session']['lookup_seconds_per_query'] * 1e9:.0f} ns/query")
            else:
                for r in doc["results"]:
                    print(f"encode 10^7 x 2 kinds, {r['variant']}: peak {r['peak_rss_bytes'] / MIB:.0f} MiB "
                          f"(words {r['peak_rss_before_encode_bytes'] / MIB:.0f} MiB), {r['encode_seconds']:.1f} s")
                print("identical bytes:", doc["identical_bytes"])


if __name__ == "__main__":
    main()
