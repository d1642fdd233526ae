"""Peak RSS of building and serving a 10^7-record index (issue item 4).

    python benchmarks/memory_1e7.py [--records 10000000] [--queries 16384] [--index-dir DIR]

1. A builder process streams the holder's match keys in chunks of 2^16 (generated
   directly as ~40-byte keys: the normaliser is bypassed, the OPRF sees the same kind of
   input), evaluates them with ``IndexBuilder`` (both kinds: membership and cardinality,
   as ``blindmatch holder index`` does), encodes and writes the two indexes. Its peak RSS
   (VmHWM) is the build figure.
2. ``blindmatch bench --index prebuilt`` then runs one membership session against the
   stored index: the holder process loads the index file (what DownloadIndex serves) and
   evaluates the session; the requester process downloads, parses and looks up. Each
   reports its own VmHWM.

Writes ``benchmarks/results/memory_1e7.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from blindmatch.bench.common import BenchConfig, ensure_prebuilt, machine_info
from blindmatch.bench.harness import format_report, run_bench

GIB = 2**30


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=10_000_000)
    parser.add_argument("--queries", type=int, default=2**14)
    parser.add_argument("--index-dir", default="/tmp/blindmatch-bench-1e7")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "memory_1e7.json"))
    args = parser.parse_args()
    cfg = BenchConfig(args.records, args.queries, index="prebuilt", index_dir=args.index_dir)
    t = time.perf_counter()
    meta = ensure_prebuilt(cfg, kinds=("membership", "cardinality"))
    print(f"build: {meta['index_build_seconds']:.1f} s, peak RSS {meta['peak_rss_build_bytes'] / 2**20:.1f} MiB", flush=True)
    result = run_bench(cfg)
    print(format_report(result), flush=True)
    out = {
        "records": args.records,
        "queries": args.queries,
        "key_source": "cheap ~40-byte keys generated in chunks of 2^16 (normaliser bypassed)",
        "build": meta,
        "session": result,
        "peak_rss_build_bytes": meta["peak_rss_build_bytes"],
        "peak_rss_holder_serve_bytes": result["peak_rss_holder_serve_bytes"],
        "peak_rss_requester_bytes": result["peak_rss_requester_bytes"],
        "under_1_gib": max(meta["peak_rss_build_bytes"], result["peak_rss_holder_bytes"], result["peak_rss_requester_bytes"]) < GIB,
        "wall_seconds": time.perf_counter() - t,
        "machine": machine_info(),
    }
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps({k: out[k] for k in ("peak_rss_build_bytes", "peak_rss_holder_serve_bytes", "peak_rss_requester_bytes", "under_1_gib")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
