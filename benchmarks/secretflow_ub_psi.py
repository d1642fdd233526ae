"""SecretFlow's unbalanced PSI (``spu`` 0.9.5 ``ub_psi_execute``): issue 18's unbalanced row.

Runs in the separate venv of ``secretflow_psi.py`` (same inputs, same in-memory link, both
parties on threads of this process):

    /tmp/spu_venv/bin/python benchmarks/secretflow_ub_psi.py --n 2^20 --m 2^14 --repeats 3

The server (holder) side's offline phase (``MODE_OFFLINE``: evaluate its records under its
key into a cache and transfer the cache to the client) runs once and is timed apart; the
online phase (``MODE_ONLINE``: the client's queries blinded, evaluated by the server,
unblinded and looked up in the transferred cache) is what blindmatch's prebuilt-index
session compares with, and runs ``--repeats`` times. Wall and CPU seconds (both parties).

Scripting note: running ``MODE_OFFLINE_GEN_CACHE`` and ``MODE_OFFLINE_TRANSFER_CACHE`` as
two calls and then ``MODE_ONLINE`` aborts the process in spu 0.9.5 (an exception thrown in
``EcdhOprfPsiServer::RecvBlindAndSendEvaluate`` from ``ChannelMem::Recv`` escapes its
thread); ``MODE_OFFLINE`` as one call, then ``MODE_ONLINE``, works and is used here. The
link's receive timeout is raised from spu's default 30 s, which a loaded 2-core machine's
offline phase at 2^20 exceeds (the client then aborts the same way).
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
from secretflow_psi import _count, _write_keys


def _config(mode: psi.UbPsiMode, rank: int, workdir: Path) -> psi.UbPsiExecuteConfig:
    """Rank 0 is the server (holder, 2^20 records), rank 1 the client (queries), who gets the result."""
    config = psi.UbPsiExecuteConfig()
    config.mode = mode
    config.role = psi.UbPsiRole.ROLE_SERVER if rank == 0 else psi.UbPsiRole.ROLE_CLIENT
    config.cache_path = str(workdir / f"cache{rank}")
    config.input_params = psi.InputParams(
        type=psi.SourceType.SOURCE_TYPE_FILE_CSV, path=str(workdir / f"keys{rank}.csv"), selected_keys=["id"], keys_unique=True
    )
    config.output_params = psi.OutputParams(
        type=psi.SourceType.SOURCE_TYPE_FILE_CSV, path=str(workdir / f"out{rank}.csv"), disable_alignment=True
    )
    if rank == 0:
        config.server_params = psi.UbPsiServerParams(secret_key_path=str(workdir / "server.key"))
    config.client_receive_result = True
    return config


def _run(mode: psi.UbPsiMode, workdir: Path) -> dict[str, float]:
    """Both parties of one phase on threads over a memory link; wall (slower finish) and CPU seconds."""
    desc = memory_link(recv_timeout_ms=900_000)  # the default 30 s is shorter than a loaded offline phase at 2^20

    def party(rank: int) -> None:
        psi.ub_psi_execute(_config(mode, rank, workdir), link.create_mem(desc, rank))

    seconds, cpu = run_both_parties(party)
    return {"seconds": seconds, "cpu_seconds": cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=_count, default=1 << 20, help="server (holder) records")
    parser.add_argument("--m", type=_count, default=1 << 14, help="client (requester) queries")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    result: dict[str, object] = {"spu": __import__("spu").__version__, "n": args.n, "m": args.m, "nproc": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        sender = [f"record-{i:012d}-{os.urandom(6).hex()}" for i in range(args.n)]
        receiver = sender[: args.m // 2] + [f"query--{i:012d}-{os.urandom(6).hex()}" for i in range(args.m - args.m // 2)]
        _write_keys(workdir / "keys0.csv", sender)
        _write_keys(workdir / "keys1.csv", receiver)
        key_fd = os.open(workdir / "server.key", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(key_fd, "wb") as key_file:
            key_file.write(os.urandom(32))
        result["offline"] = _run(psi.UbPsiMode.MODE_OFFLINE, workdir)
        runs = []
        for _ in range(args.repeats):
            run = _run(psi.UbPsiMode.MODE_ONLINE, workdir)
            run["matches"] = len((workdir / "out1.csv").read_text().splitlines()) - 1
            runs.append(run)
        result["online"] = {
            "median_seconds": statistics.median(r["seconds"] for r in runs),
            "median_cpu_seconds": statistics.median(r["cpu_seconds"] for r in runs),
            "expected_matches": args.m // 2,
            "runs": runs,
        }
    result["load_avg_end"] = os.getloadavg()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
