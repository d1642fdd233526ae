"""``blindmatch bench``: time the whole protocol on synthetic inputs (see blindmatch.bench)."""

from __future__ import annotations

import argparse
import json
import sys

from blindmatch.cli.errors import CliError
from blindmatch.vocabulary import ExitCode


def _count(text: str) -> int:
    """A positive count, also written as a power of two: ``65536`` or ``2^16``."""
    try:
        value = 2 ** int(text[2:]) if text.startswith("2^") else int(float(text)) if "e" in text.lower() else int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a count: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="benchmark the protocol end to end",
        description="Generate HOLDER records and QUERIES queries (half of them matching), run the whole protocol "
        "(index build, download, blind, evaluate, finalize, lookup) with the holder and the requester in separate "
        "processes, and print per-phase times, bytes each way and each side's peak RSS.",
    )
    parser.add_argument("--holder", type=_count, required=True, metavar="N", help="holder records (e.g. 65536 or 2^16)")
    parser.add_argument("--queries", type=_count, required=True, metavar="M", help="requester queries; M/2 match")
    parser.add_argument("--mode", choices=("membership", "cardinality"), default="membership")
    parser.add_argument("--workers", type=int, default=None, metavar="K", help="threads per side (default: all cores)")
    parser.add_argument("--transport", choices=("local", "grpc"), default="local", help="local: pipes between processes; grpc: the daemons on loopback")
    parser.add_argument("--index", choices=("build", "prebuilt"), default="build", help="prebuilt: time a session against an index built (and stored) beforehand")
    parser.add_argument("--index-dir", default=None, help="where prebuilt indexes are stored (default ~/.cache/blindmatch-bench)")
    parser.add_argument("--cluster", default=None, metavar="ADDRESS", help="build the index on this Dask scheduler (cluster extra)")
    parser.add_argument("--inputs", choices=("keys", "tokens"), default="keys",
                        help="tokens: the holder's index over, and the requester's queries as, eligibility tokens")
    parser.add_argument("--batch-size", type=int, default=4096)
    parser.add_argument("--window", type=int, default=4, help="blinded batches in flight (local transport; grpc uses requester.toml's)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--openmined", action="store_true", help="also run OpenMined PSI on the same inputs (bench extra)")
    parser.add_argument("--floor", action="store_true", help="also measure the libsodium scalar-multiplication floor")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON line, last on stdout")
    parser.set_defaults(func=_bench)


def _bench(args: argparse.Namespace) -> int:
    from blindmatch.bench.common import BenchConfig
    from blindmatch.bench.harness import format_report, run_bench

    if args.workers is not None and args.workers < 1:
        raise CliError("--workers must be at least 1", ExitCode.USAGE)
    if args.window < 1:
        raise CliError("--window must be at least 1", ExitCode.USAGE)
    if args.batch_size < 1:
        raise CliError("--batch-size must be at least 1", ExitCode.USAGE)
    cfg = BenchConfig(
        holder_records=args.holder,
        queries=args.queries,
        mode=args.mode,
        workers=args.workers,
        transport=args.transport,
        index=args.index,
        index_dir=args.index_dir,
        batch_size=args.batch_size,
        window=args.window,
        seed=args.seed,
        cluster=args.cluster,
        inputs=args.inputs,
    )
    try:
        result = run_bench(cfg)
    except (RuntimeError, ValueError, ImportError) as exc:
        raise CliError(str(exc)) from None
    print(format_report(result))
    if args.openmined:
        from blindmatch.bench import openmined

        if not openmined.available():
            raise CliError("--openmined needs the bench extra (openmined-psi)")
        om = openmined.run_openmined(args.holder, args.queries, args.seed)
        result["openmined"] = om
        result["ratio_vs_openmined"] = result["total_seconds"] / om["total_seconds"]
        print(f"  OpenMined PSI         {om['total_seconds']:.3f} s (setup {om['setup_seconds']:.3f} s), "
              f"{om['bytes_up']} B up / {om['bytes_down']} B down; blindmatch/OpenMined = {result['ratio_vs_openmined']:.3f}")
    if args.floor:
        from blindmatch.bench.floor import measure_floor

        fl = measure_floor(workers=args.workers)
        result["floor"] = fl
        print(f"  libsodium floor       {fl['median_per_second']['floor']:.0f} mult/s on {fl['threads']} threads; "
              f"blind_evaluate {fl['blind_evaluate_slowdown_vs_floor']:.3f}x, index build {fl['index_build_slowdown_vs_floor']:.3f}x slower")
    if args.json:
        sys.stdout.flush()
        print(json.dumps(result, sort_keys=True))
    return 0
