"""SecretFlow PSI (``spu`` 0.9.5, C++) on the machine that runs blindmatch: the reference of issue 18.

``spu`` cannot live in blindmatch's environment (it pins its own protobuf and friends), so
this script runs in a separate virtual environment:

    python3 -m venv /tmp/spu_venv && /tmp/spu_venv/bin/pip install spu==0.9.5
    /tmp/spu_venv/bin/python benchmarks/secretflow_psi.py --n 2^14 --m 2^14 --repeats 3

Both parties run in this process on threads joined by an in-memory link (``create_mem``;
no network), each reading its keys from a CSV file, which is how SecretFlow's own tests
run it. Inputs mirror ``blindmatch bench``: ~40-byte keys, half of the receiver's keys are
the sender's. It times ``psi_execute`` end to end (both parties start together; the
slower finish counts) for ECDH (curve25519) and RR22, and prints one JSON line. Each run
also records the CPU seconds of both parties together (``cpu_seconds``: on a shared machine
the work done, which load disturbs less than the wall time).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
from pathlib import Path

import spu.libspu.link as link
import spu.psi as psi
from secretflow_common import memory_link, run_both_parties


def _count(text: str) -> int:
    return 2 ** int(text[2:]) if text.startswith("2^") else int(text)


def _write_keys(path: Path, keys: list[str]) -> None:
    path.write_text("id\n" + "\n".join(keys) + "\n")


def _config(protocol: str, rank: int, inp: Path, out: Path) -> psi.PsiExecuteConfig:
    proto = psi.PsiProtocolConfig(protocol=getattr(psi.PsiProtocol, protocol), receiver_rank=0, broadcast_result=False)
    if protocol == "PROTOCOL_ECDH":
        proto.ecdh_params.curve = psi.EllipticCurveType.CURVE_25519
    config = psi.PsiExecuteConfig()
    config.protocol_conf = proto
    config.input_params = psi.InputParams(type=psi.SourceType.SOURCE_TYPE_FILE_CSV, path=str(inp), selected_keys=["id"], keys_unique=True)
    config.output_params = psi.OutputParams(type=psi.SourceType.SOURCE_TYPE_FILE_CSV, path=str(out), disable_alignment=True)
    return config


def run_once(protocol: str, n: int, m: int, seed: int, workdir: Path) -> dict[str, float | int]:
    sender = [f"{seed:08x}-record-{i:012d}-{os.urandom(6).hex()}" for i in range(n)]
    receiver = sender[: m // 2] + [f"{seed:08x}-query--{i:012d}-{os.urandom(6).hex()}" for i in range(m - m // 2)]
    paths = [workdir / "receiver.csv", workdir / "sender.csv"]
    _write_keys(paths[0], receiver)
    _write_keys(paths[1], sender)
    desc = memory_link()

    def party(rank: int) -> None:
        psi.psi_execute(_config(protocol, rank, paths[rank], workdir / f"out{rank}.csv"), link.create_mem(desc, rank))

    seconds, cpu = run_both_parties(party)
    matches = len((workdir / "out0.csv").read_text().splitlines()) - 1
    return {"seconds": seconds, "cpu_seconds": cpu, "matches": matches, "expected_matches": m // 2}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=_count, default=1 << 14, help="sender (holder) records")
    parser.add_argument("--m", type=_count, default=1 << 14, help="receiver (requester) records")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--protocols", default="PROTOCOL_ECDH,PROTOCOL_RR22")
    args = parser.parse_args()
    result: dict[str, object] = {"spu": __import__("spu").__version__, "n": args.n, "m": args.m, "nproc": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        for protocol in args.protocols.split(","):
            runs = [run_once(protocol, args.n, args.m, r, Path(tmp)) for r in range(args.repeats)]
            result[protocol] = {
                "median_seconds": statistics.median(r["seconds"] for r in runs),
                "median_cpu_seconds": statistics.median(r["cpu_seconds"] for r in runs),
                "runs": runs,
            }
    result["load_avg_end"] = os.getloadavg()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
