"""``blindmatch official``: tools for the requesting organisation's officials.

``keygen`` creates the key pair an official signs session requests with and prints
what the holder's administrator pastes into the policy file.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from blindmatch.cli import approve
from blindmatch.cli.errors import CliError
from blindmatch.cli.passphrase import read_passphrase
from blindmatch.identity import identity_problem
from blindmatch.policy.keys import GeneratedKey, OfficialKeyError, generate_official_key
from blindmatch.vocabulary import ExitCode

SNIPPET_VALIDITY = timedelta(days=365)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("official", help="officials' keys, and their approval of prepared jobs")
    commands = parser.add_subparsers(dest="official_command", metavar="SUBCOMMAND", required=True)
    keygen = commands.add_parser(
        "keygen",
        help="create an official's Ed25519 key pair",
        description="Write FILE (private key, PEM PKCS#8 encrypted under a passphrase, mode 0600) and FILE.pub "
        "(public key, base64), and print the policy-file entry for the holder.",
    )
    keygen.add_argument("--name", required=True, help="the official's name as the policy file will list it")
    keygen.add_argument("--out", required=True, type=Path, metavar="FILE", help="private key file to create")
    keygen.add_argument("--organisation", default="ORGANISATION", help="organisation (mTLS identity) for the snippet")
    keygen.add_argument("--role", default="ROLE", help="the official's role, for the snippet")
    keygen.add_argument("--json", action="store_true", help="print a JSON object instead of text")
    keygen.add_argument(
        "--passphrase-file", type=Path, metavar="FILE",
        help="read the passphrase from FILE's first line (mode 0600); asked twice on the terminal otherwise",
    )
    keygen.set_defaults(func=_keygen)
    approve.register(commands)


def _toml_string(text: str) -> str:
    # json.dumps yields a valid TOML basic string for any text (same escapes).
    return json.dumps(text, ensure_ascii=False)


def policy_snippet(key: GeneratedKey, organisation: str, role: str, today: datetime) -> str:
    """The ``[[organisations."…".officials]]`` entry; validity and modes are proposals."""
    start = today.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    end = start + SNIPPET_VALIDITY
    return (
        f"[[organisations.{_toml_string(organisation)}.officials]]\n"
        f"name = {_toml_string(key.name)}\n"
        f"role = {_toml_string(role)}\n"
        f"public_key = {_toml_string(key.public_key_b64)}\n"
        f"valid_from = {start:%Y-%m-%dT%H:%M:%SZ}\n"
        f"valid_until = {end:%Y-%m-%dT%H:%M:%SZ}\n"
        'modes = ["membership"]\n'
    )


def _keygen(args: argparse.Namespace) -> int:

    for option, value in (("--name", args.name), ("--organisation", args.organisation), ("--role", args.role)):
        problem = identity_problem(value)
        if problem:  # the holder's policy would refuse the entry
            raise CliError(f"{option}: {problem}", ExitCode.USAGE)
    try:
        key = generate_official_key(args.name, args.out, read_passphrase(args.passphrase_file, confirm=True))
    except OfficialKeyError as exc:
        raise CliError(str(exc)) from None
    snippet = policy_snippet(key, args.organisation, args.role, datetime.now(UTC))
    if args.json:
        print(
            json.dumps(
                {
                    "name": key.name,
                    "public_key": key.public_key_b64,
                    "private_key_file": str(key.private_key_file),
                    "public_key_file": str(key.public_key_file),
                    "policy_snippet": snippet,
                },
                indent=2,
                ensure_ascii=False,
            )
        )
    else:
        print(f"public key: {key.public_key_b64}")
        print(f"wrote {key.private_key_file} (private, mode 0600; keep it secret) and {key.public_key_file}")
        print("\nFor the holder's policy file (check role, validity and modes):\n")
        print(snippet, end="")
    return 0
