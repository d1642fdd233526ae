"""Regenerate the Python protobuf/gRPC modules from proto/ into src/blindmatch/v1/.

Run: python proto/generate.py            (writes the files)
     python proto/generate.py --check    (exit 1 if the committed files are stale)
The grpcio-tools version is pinned in pyproject.toml's test extra so that output is
byte-for-byte reproducible.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "proto"
OUT_ROOT = ROOT / "src"
PACKAGE_DIR = Path("blindmatch") / "v1"


def generate(out_root: Path) -> list[Path]:
    protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in (PROTO_ROOT / PACKAGE_DIR).glob("*.proto"))
    well_known = str(Path(protoc.__file__).parent / "_proto")
    args = ["protoc", f"-I{PROTO_ROOT}", f"-I{well_known}", f"--python_out={out_root}", f"--pyi_out={out_root}", f"--grpc_python_out={out_root}", *protos]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    return sorted(p for p in (out_root / PACKAGE_DIR).iterdir() if p.suffix in {".py", ".pyi"} and p.name != "__init__.py")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args()
    if not args.check:
        for path in generate(OUT_ROOT):
            print(path.relative_to(ROOT))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        stale = []
        fresh = generate(Path(tmp))
        for path in fresh:
            committed = OUT_ROOT / PACKAGE_DIR / path.name
            if not committed.exists() or committed.read_bytes() != path.read_bytes():
                stale.append(str(committed.relative_to(ROOT)))
        if stale:
            print("stale generated code (run python proto/generate.py):", *stale, sep="\n  ", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
