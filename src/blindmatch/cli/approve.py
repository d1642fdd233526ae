"""``blindmatch official show|approve|reject JOB``: officials decide on a prepared job.

The requester daemon prepares a job (the exact signed requests to send, with their blinds
fixed) and waits. These commands read it from the job store named by ``requester.toml``,
so approving needs no access to the holder and no daemon. ``approve`` signs every
prepared request with the official's own key after checking the digest the official was
shown: a passphrase-encrypted key file (``--key``, decrypted here, in the official's
process, never handed to the daemon) or, when the official's configuration says so
(``--official-config``, ``[pkcs11]``), a key that stays inside a PKCS#11 token.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from blindmatch.cli.errors import CliError
from blindmatch.cli.passphrase import read_passphrase, read_pin
from blindmatch.officials.config import OfficialConfigError, load_signer_config
from blindmatch.officials.signers import KeySigner, Signer, TokenSigner, sign_and_approve
from blindmatch.officials.token import TokenError
from blindmatch.policy.keys import OfficialKeyError, load_official_key
from blindmatch.requester.approvals import ApprovalError, Approvals, PreparedSession, requests_digest
from blindmatch.requester.config import ConfigError, RequesterConfig, load_requester_config
from blindmatch.requester.jobs import JobStore
from blindmatch.vocabulary import ExitCode


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    show = commands.add_parser("show", help="what a prepared job will ask the holder, and its digest")
    approve = commands.add_parser(
        "approve", help="sign a prepared job's requests with your own key",
        description="Show the job, check DIGEST (or ask on the terminal), sign each prepared request with your "
        "key and release the job. The key is the encrypted file of --key (passphrase from --passphrase-file or "
        "the terminal), or what your --official-config names: [key] file, or [pkcs11] library, token_label, "
        "key_label and pin_env (the PIN from that environment variable, or asked on the terminal).",
    )
    reject = commands.add_parser("reject", help="refuse a prepared job: nothing of it is ever sent")
    for sub in (show, approve, reject):
        sub.add_argument("job_id", metavar="JOB")
        sub.add_argument("--config", required=True, type=Path, help="the requester's requester.toml (job store)")
    show.add_argument("--json", action="store_true", help="print a JSON object")
    show.set_defaults(func=_show)
    key = approve.add_mutually_exclusive_group(required=True)
    key.add_argument("--key", type=Path, metavar="FILE", help="your private key file (encrypted PEM)")
    key.add_argument("--official-config", type=Path, metavar="FILE",
                     help="your official.toml: [key] file, or [pkcs11] for a key in a token")
    approve.add_argument("--passphrase-file", type=Path, metavar="FILE", help="passphrase on the first line (0600)")
    approve.add_argument("--digest", help="the digest `official show` printed; asked on the terminal otherwise")
    approve.add_argument("--await-cosigner", action="store_true",
                         help="sign but keep the job waiting for another official's signature (dual control)")
    approve.set_defaults(func=_approve)
    reject.add_argument("--reason", default="no reason given", help="why (recorded with the job)")
    reject.set_defaults(func=_reject)


def _open(args: argparse.Namespace) -> tuple[RequesterConfig, Approvals]:
    try:
        config = load_requester_config(args.config)
    except ConfigError as exc:
        raise CliError(str(exc), ExitCode.USAGE) from None
    if not config.store_path.exists():
        raise CliError(f"{config.store_path}: no job store (has the requester run a job?)", ExitCode.USAGE)
    approvals = Approvals(JobStore(config.store_path))
    try:
        approvals.store.get(args.job_id)
    except KeyError:
        raise CliError(f"no job {args.job_id!r} in {config.store_path}", ExitCode.USAGE) from None
    return config, approvals


def _sessions(approvals: Approvals, job_id: str) -> list[PreparedSession]:
    try:
        return approvals.summary_of(job_id)
    except ApprovalError as exc:
        raise CliError(str(exc)) from None


def summary(config: RequesterConfig, approvals: Approvals, job_id: str) -> dict[str, Any]:
    """What the officials are asked to approve: one entry per prepared session and the digest over all."""
    sessions = _sessions(approvals, job_id)
    job = approvals.store.get(job_id)
    first = sessions[0].request
    return {
        "job_id": job_id,
        "holder": config.holder.name,
        "organisation": first.organisation,
        "official": first.official,
        "mode": first.mode,
        "input_records": job.preparation.records,
        "held_back": sum(s.request.held_back for s in sessions),
        "elements": sum(s.request.record_count for s in sessions),
        "legal_basis": first.legal_basis,
        "expires_at": min(s.request.expires_at for s in sessions).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "sessions": [{"session_id": s.session_id.hex(), "elements": s.request.record_count} for s in sessions],
        "signed_by": [base64.b64encode(key).decode() for key, _ in sessions[0].signatures],
        "digest": requests_digest([s.request for s in sessions]).hex(),
        "waits_because": job.error,  # e.g. the holder refused the official of an earlier approval
    }


def _print(info: dict[str, Any]) -> None:
    print(f"job {info['job_id']}: ask {info['holder']} in {info['mode']} mode")
    print(f"  as {info['organisation']}, official named: {info['official']}")
    print(f"  legal basis: {info['legal_basis']}")
    print(f"  {info['input_records']} input records, {info['held_back']} held back as ineligible, "
          f"{info['elements']} match keys in {len(info['sessions'])} session(s)")
    print(f"  requests expire at {info['expires_at']}; signed so far by {len(info['signed_by'])} key(s)")
    print(f"  digest: {info['digest']}")
    if info["waits_because"]:
        print(f"  waits because: {info['waits_because']}")


def _show(args: argparse.Namespace) -> int:
    config, approvals = _open(args)
    info = summary(config, approvals, args.job_id)
    if args.json:
        print(json.dumps(info, indent=2, ensure_ascii=False))
    else:
        _print(info)
    return 0


def _confirmed(info: dict[str, Any], digest: str | None) -> None:
    if digest is not None:
        if digest.strip().lower() != info["digest"]:
            raise CliError(f"job {info['job_id']}: the prepared requests differ from digest {digest} "
                           "(changed, or another job); nothing was signed")
        return
    if not sys.stdin.isatty():
        raise CliError("no terminal to confirm on: give --digest (from `official show`)", ExitCode.USAGE)
    _print(info)
    if input("Approve these requests? [y/N] ").strip().lower() not in ("y", "yes"):
        raise CliError("not approved; nothing was signed")


def _approve(args: argparse.Namespace) -> int:
    config, approvals = _open(args)
    info = summary(config, approvals, args.job_id)
    _confirmed(info, args.digest)
    signer = _signer(args)
    try:
        sign_and_approve(approvals, args.job_id, signer, bytes.fromhex(info["digest"]),
                         release=not args.await_cosigner, now=datetime.now(UTC))
    except TokenError as exc:
        raise CliError(f"{exc}; nothing was signed") from None
    except ApprovalError as exc:
        raise CliError(str(exc)) from None
    state = "waits for a co-signer" if args.await_cosigner else "is released; the requester daemon runs it"
    print(f"approved job {args.job_id} ({len(info['sessions'])} request(s) signed); it {state}")
    return 0


def _signer(args: argparse.Namespace) -> Signer:
    """The official's key: a key file (``--key`` or ``[key]``) or a token (``[pkcs11]``)."""
    key_file: Path | None = args.key
    if args.official_config is not None:
        try:
            config = load_signer_config(args.official_config)
        except OfficialConfigError as exc:
            raise CliError(f"{exc}; nothing was signed", ExitCode.USAGE) from None
        if config.token is not None:
            return TokenSigner(config.token, read_pin(config.token))
        key_file = config.key_file
    assert key_file is not None  # argparse: --key or --official-config
    try:
        return KeySigner(load_official_key(key_file, read_passphrase(args.passphrase_file)))
    except OfficialKeyError as exc:
        raise CliError(f"{exc}; nothing was signed") from None


def _reject(args: argparse.Namespace) -> int:
    _, approvals = _open(args)
    try:
        approvals.reject(args.job_id, f"rejected by an official: {args.reason}")
    except ApprovalError as exc:
        raise CliError(str(exc)) from None
    print(f"rejected job {args.job_id}; none of its requests will be sent")
    return 0
