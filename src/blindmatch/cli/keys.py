"""``blindmatch keys``: the holder's OPRF secret key."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from blindmatch.cli.commands import CommandGroup
from blindmatch.cli.errors import CliError
from blindmatch.core.keys import HolderKey
from blindmatch.keyfile import KeyFileError, read_oprf_key, write_oprf_key


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    group = CommandGroup(subparsers, "keys", "manage the holder's OPRF secret key", "Manage the holder's OPRF secret key.")
    gen = group.add("generate", _generate, "create a new random OPRF key (file mode 0600; never overwrites)",
                    "Create a new random ristretto255 OPRF secret key in FILE with mode 0600 and print its public key id.",
                    config=False)
    gen.add_argument("--out", required=True, type=Path, metavar="FILE", help="where to write the key; must not exist")
    gen.add_argument("--json", action="store_true", help="print {\"key_id\": ...} as JSON")
    show = group.add("id", _key_id, "print the public key id of a key file", "Print the key id (public) of an OPRF key file.",
                     config=False)
    show.add_argument("file", type=Path, metavar="FILE")


def _generate(args: argparse.Namespace) -> int:
    key = HolderKey.generate()
    try:
        write_oprf_key(args.out, key.sk)
    except KeyFileError as exc:
        raise CliError(str(exc)) from None
    print(json.dumps({"key_id": key.key_id.hex(), "file": str(args.out)}) if args.json else f"key id {key.key_id.hex()} written to {args.out} (mode 0600)")
    return 0


def _key_id(args: argparse.Namespace) -> int:
    try:
        print(HolderKey(read_oprf_key(args.file)).key_id.hex())
    except (KeyFileError, ValueError) as exc:
        raise CliError(str(exc)) from None
    return 0
