"""``blindmatch official``: tools for the requesting organisation's officials.

``keygen`` creates the key pair an official signs session requests with (an encrypted
key file, or a key pair inside the PKCS#11 token the official's configuration names)
and prints what the holder's administrator pastes into the policy file.
"""

from __future__ import annotations

import argparse
import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from blindmatch.cli import approve
from blindmatch.cli.errors import CliError
from blindmatch.cli.passphrase import read_passphrase, read_pin
from blindmatch.identity import identity_problem
from blindmatch.officials.config import OfficialConfigError, load_signer_config
from blindmatch.officials.token import TokenError, generate_on_token, token_public_key
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
        "(public key, base64), or create the key pair inside the token of --official-config ([pkcs11]), and "
        "print the policy-file entry for the holder.",
    )
    keygen.add_argument("--name", required=True, help="the official's name as the policy file will list it")
    where = keygen.add_mutually_exclusive_group(required=True)
    where.add_argument("--out", type=Path, metavar="FILE", help="private key file to create")
    where.add_argument("--official-config", type=Path, metavar="FILE",
                       help="your official.toml whose [pkcs11] names the token and the key label to create")
    keygen.add_argument("--existing", action="store_true",
                        help="with --official-config: the key pair is already in the token (made with the vendor's "
                        "tools, or imported); print its policy entry instead of creating one")
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


def policy_snippet(key: GeneratedKey | tuple[str, str], organisation: str, role: str, today: datetime) -> str:
    """The ``[[organisations."…".officials]]`` entry; validity and modes are proposals.

    ``key`` is a generated key file or ``(name, base64 public key)`` of a token's key."""
    name, public_key_b64 = (key.name, key.public_key_b64) if isinstance(key, GeneratedKey) else key
    start = today.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    end = start + SNIPPET_VALIDITY
    return (
        f"[[organisations.{_toml_string(organisation)}.officials]]\n"
        f"name = {_toml_string(name)}\n"
        f"role = {_toml_string(role)}\n"
        f"public_key = {_toml_string(public_key_b64)}\n"
        f"valid_from = {start:%Y-%m-%dT%H:%M:%SZ}\n"
        f"valid_until = {end:%Y-%m-%dT%H:%M:%SZ}\n"
        'modes = ["membership"]\n'
    )


def _keygen(args: argparse.Namespace) -> int:

    for option, value in (("--name", args.name), ("--organisation", args.organisation), ("--role", args.role)):
        problem = identity_problem(value)
        if problem:  # the holder's policy would refuse the entry
            raise CliError(f"{option}: {problem}", ExitCode.USAGE)
    if args.official_config is not None:
        return _keygen_on_token(args)
    if args.existing:
        raise CliError("--existing needs --official-config (a key pair in a PKCS#11 token)", ExitCode.USAGE)
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


def _keygen_on_token(args: argparse.Namespace) -> int:
    """The key pair is made inside the token (or, ``--existing``, found there); only its public half is printed."""
    try:
        config = load_signer_config(args.official_config)
    except OfficialConfigError as exc:
        raise CliError(str(exc), ExitCode.USAGE) from None
    if config.token is None:
        raise CliError(f"{args.official_config}: keygen --official-config needs a [pkcs11] token "
                       "(for a key file use --out)", ExitCode.USAGE)
    try:
        pin = read_pin(config.token)
        public_key = token_public_key(config.token, pin) if args.existing else generate_on_token(config.token, pin)
    except TokenError as exc:
        raise CliError(str(exc)) from None
    public_b64 = base64.b64encode(public_key).decode("ascii")
    snippet = policy_snippet((args.name, public_b64), args.organisation, args.role, datetime.now(UTC))
    where = {"token_label": config.token.token_label, "key_label": config.token.key_label}
    if args.json:
        print(json.dumps({"name": args.name, "public_key": public_b64, **where, "policy_snippet": snippet},
                         indent=2, ensure_ascii=False))
    else:
        print(f"public key: {public_b64}")
        done = "found" if args.existing else "created"
        print(f"{done} key {where['key_label']!r} in token {where['token_label']!r} (the private half never leaves it)")
        print("\nFor the holder's policy file (check role, validity and modes):\n")
        print(snippet, end="")
    return 0
