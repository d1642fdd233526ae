"""A complete two-organisation pilot on one machine, and its checks.

``create_workspace`` writes what a real deployment has, with complete configuration
files, so that after the demo a user can run both sides by hand:

    DIR/ca/        the demo's certificate authority (a third party in a real deployment)
    DIR/holder/    holder.toml, policy.toml, schema.toml, records.csv, pki/ (CA certificate,
                   its server certificate), officials/*.pub, index/, oprf.key, audit/
    DIR/requester/ requester.toml, schema.toml, queries.csv, pki/ (CA, its client
                   certificate), officials/*.key, audit/, state/
    DIR/truth.json which queries are true matches (the demo's answer key)

``HolderProcess`` runs ``blindmatch holder serve`` as a real subprocess; ``run_demo``
matches, compares with the truth and tries each of the seven refusals the legal setting
names (``refusals``) plus the cardinality minimum (``other_refusals``) against the live holder. Tests reuse these pieces with smaller sizes.
"""

from __future__ import annotations

import csv
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from importlib import resources
from pathlib import Path

import tomli_w
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from blindmatch import synthetic
from blindmatch.audit import AuditLog, reconcile, verify_log
from blindmatch.core.index import EncryptedIndex
from blindmatch.core.outputs import Mode
from blindmatch.core.requester import RequesterSession
from blindmatch.crypto.batch import BatchEngine
from blindmatch.node.holder_client import HolderClient, HolderRefused
from blindmatch.node.pki import init_pki
from blindmatch.node.requester_config import RequesterConfig, load_requester_config
from blindmatch.node.requester_runner import run_session
from blindmatch.node.wire import MODE_TO_PB
from blindmatch.policy import SessionRequest, generate_official_key, load_official_key, sign_request

HOLDER_ORG = "Example Tax Authority"
REQUESTER_ORG = "Example County Court"
OTHER_ORG = "Other Agency"
PRIMARY_OFFICIAL = "Alice Clerk"
SECOND_OFFICIAL = "Bob Deputy"  # membership only: the mode_not_allowed probe
OTHER_OFFICIAL = "Olga Other"  # an official of OTHER_ORG: the wrong_organisation probe
LEGAL_BASIS = "Example Tax Administration Act s. 12 (court order)"
SESSION_MAX_RECORDS = 5_000
DAY_RECORDS = 200_000
HOLDER_READY_SECONDS = 30.0


@dataclass(frozen=True)
class Workspace:
    root: Path
    holder_config: Path
    requester_config: Path
    records: Path
    queries: Path
    truth: Path
    port: int

    @property
    def holder_dir(self) -> Path:
        return self.holder_config.parent

    @property
    def requester_dir(self) -> Path:
        return self.requester_config.parent


def free_port() -> int:
    """A loopback port free right now (the holder binds it moments later)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def blindmatch_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "blindmatch", *args]


def _write_csv(path: Path, rows: list[dict[str, str]], columns: list[str]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def _toml(path: Path, data: dict[str, object]) -> None:
    path.write_text(tomli_w.dumps(data), encoding="utf-8")


def _hold_back(queries: list[dict[str, str]], share: float, seed: int, today: date) -> None:
    """Give a share of the queries an order date in the future or none: they must be held back."""
    step = max(2, round(1 / share))
    for i in range(seed % step, len(queries), step):
        if (i // step) % 2:
            queries[i]["order_date"] = (today + timedelta(days=30 + i % 300)).isoformat()
        else:
            queries[i]["order_date"] = ""


def create_workspace(
    root: Path,
    holder_records: int = 10_000,
    queries: int = 1_000,
    match_share: float = 0.3,
    ineligible_share: float = 0.05,
    seed: int = 2025,
    port: int | None = None,
    holder_limits: dict[str, object] | None = None,
    matching: dict[str, object] | None = None,
) -> Workspace:
    """Write both organisations' files under ``root`` (reused as is when already complete).

    ``holder_limits`` and ``matching`` override entries of holder.toml's ``[holder.limits]``
    and requester.toml's ``[matching]`` (tests use tiny chunks and batches).
    """
    root = Path(root).resolve()
    holder, requester = root / "holder", root / "requester"
    existing = root / "workspace.json"
    if existing.is_file():
        saved = json.loads(existing.read_text())
        return Workspace(root, holder / "holder.toml", requester / "requester.toml", holder / "records.csv",
                         requester / "queries.csv", root / "truth.json", saved["port"])
    port = port or free_port()
    for directory in (holder, requester, holder / "officials", requester / "officials", requester / "pki"):
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    today = datetime.now(UTC).date()

    people = synthetic.generate_people(holder_records, seed)
    _write_csv(holder / "records.csv", people, ["name", "address"])
    query_rows, truth = synthetic.make_queries(people, queries, match_share, seed, today)
    _hold_back(query_rows, ineligible_share, seed, today)
    _write_csv(requester / "queries.csv", query_rows, ["name", "address", "order_date"])
    (root / "truth.json").write_text(json.dumps(truth))

    schema_text = resources.files("blindmatch.normalize").joinpath("default_schema.toml").read_text("utf-8")
    for side in (holder, requester):
        (side / "schema.toml").write_text(schema_text, encoding="utf-8")

    # The CA stands for a third party: each side receives only the CA certificate and
    # its own certificate and key, never the other side's private key.
    pki = root / "ca"
    files = {f.organisation: f for f in init_pki(pki, [HOLDER_ORG, REQUESTER_ORG], ["localhost", "127.0.0.1"])}
    (holder / "pki").mkdir(mode=0o700, exist_ok=True)
    for side, org, kind in ((holder, HOLDER_ORG, "server"), (requester, REQUESTER_ORG, "client")):
        shutil.copy(pki / "ca.crt", side / "pki" / "ca.crt")
        for suffix in (".crt", ".key"):
            shutil.copy(files[org].directory / f"{kind}{suffix}", side / "pki" / f"{kind}{suffix}")
        os.chmod(side / "pki" / f"{kind}.key", 0o600)

    officials = {}
    for name, filename in ((PRIMARY_OFFICIAL, "alice.key"), (SECOND_OFFICIAL, "bob.key"), (OTHER_OFFICIAL, "olga.key")):
        key = generate_official_key(name, requester / "officials" / filename)
        shutil.copy(key.public_key_file, holder / "officials" / key.public_key_file.name)
        officials[name] = f"officials/{key.public_key_file.name}"
    valid_from = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
    valid_until = valid_from + timedelta(days=366)

    def official(name: str, role: str, modes: list[str]) -> dict[str, object]:
        return {"name": name, "role": role, "public_key_file": officials[name],
                "valid_from": valid_from, "valid_until": valid_until, "modes": modes}

    limits = {"session_max_records": SESSION_MAX_RECORDS, "day_records": DAY_RECORDS,
              "thirty_day_records": 30 * DAY_RECORDS, "official_day_records": DAY_RECORDS,
              "official_thirty_day_records": 30 * DAY_RECORDS}
    _toml(holder / "policy.toml", {"organisations": {
        REQUESTER_ORG: {**limits, "officials": [
            official(PRIMARY_OFFICIAL, "Clerk of the court", ["membership", "cardinality"]),
            official(SECOND_OFFICIAL, "Deputy clerk", ["membership"]),
        ]},
        OTHER_ORG: {**limits, "officials": [official(OTHER_OFFICIAL, "Investigator", ["membership"])]},
    }})
    _toml(holder / "holder.toml", {"holder": {
        "organisation": HOLDER_ORG, "listen": f"127.0.0.1:{port}", "key_file": "oprf.key", "index_dir": "index",
        "schema": "schema.toml", "policy": "policy.toml", "budget_db": "state/budget.sqlite3", "audit_dir": ".",
        "limits": {"shutdown_grace_seconds": 5.0, **(holder_limits or {})},
        "tls": {"cert": "pki/server.crt", "key": "pki/server.key",
                "client_ca": "pki/ca.crt", "allowed_organisations": [REQUESTER_ORG]},
    }})
    _toml(requester / "requester.toml", {
        "organisation": REQUESTER_ORG, "state_dir": "state",
        "holder": {"address": f"127.0.0.1:{port}", "name": HOLDER_ORG, "ca_cert": "pki/ca.crt",
                   "cert": "pki/client.crt", "key": "pki/client.key", "server_name": "localhost",
                   "retry_seconds": 30},
        "official": {"name": PRIMARY_OFFICIAL, "key_file": "officials/alice.key", "legal_basis": LEGAL_BASIS,
                     "request_lifetime_seconds": 900},
        "matching": {"mode": "membership", "schema": "schema.toml", "batch_size": 1024, "window": 4, **(matching or {})},
        "audit": {"dir": ".", "origin": "requester/example-county-court"},
        "service": {"listen": "unix", "max_parallel_jobs": 8},
    })
    existing.write_text(json.dumps({"port": port}))
    return Workspace(root, holder / "holder.toml", requester / "requester.toml", holder / "records.csv",
                     requester / "queries.csv", root / "truth.json", port)


class HolderProcess:
    """``blindmatch holder serve`` as a subprocess; stdout/stderr go to files under ``log_dir``."""

    def __init__(self, config: Path, log_dir: Path) -> None:
        self.config = config
        self.log_dir = log_dir
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def stdout_path(self) -> Path:
        return self.log_dir / f"holder-{self.starts}.stdout"

    @property
    def stderr_path(self) -> Path:
        return self.log_dir / f"holder-{self.starts}.stderr"

    def start(self) -> None:
        self.starts += 1
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.process = subprocess.Popen(blindmatch_command("holder", "serve", "--config", str(self.config)),
                                            stdout=out, stderr=err)
        deadline = time.monotonic() + HOLDER_READY_SECONDS
        while b"listening on" not in self.stdout_path.read_bytes():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"holder did not start: {self.stderr_path.read_text(errors='replace')[-2000:]}")
            time.sleep(0.05)

    def kill(self) -> None:
        """kill -9: no drain, no checkpoint; the crash case."""
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait for the drain; returns the exit code."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)


def build_index(workspace: Workspace, records: Path | None = None) -> None:
    subprocess.run(
        blindmatch_command("holder", "index", str(records or workspace.records), "--config", str(workspace.holder_config), "--quiet"),
        check=True, stdout=subprocess.DEVNULL,
    )


def compare_results(results: Path, truth: list[bool]) -> dict[str, int]:
    """Counts of the demo's answer key against RESULTS.csv (ineligible rows expect no answer).

    A match is a confirmation (``confirms`` true); a match at a review tier is counted apart
    (``review_matches``, ``review_false``), as a candidate a person would check.
    """
    counts = {"expected_matches": 0, "matches": 0, "false_matches": 0, "missed_matches": 0, "ineligible_records": 0,
              "ineligible_answered": 0, "review_matches": 0, "review_false": 0}
    with results.open(encoding="utf-8", newline="") as handle:
        for row, expected in zip(csv.DictReader(handle), truth, strict=True):
            if row["status"].startswith("ineligible:"):
                counts["ineligible_records"] += 1
                counts["ineligible_answered"] += row["matched"] != ""
                continue
            got = row["matched"] == "true" and row.get("confirms", "true") == "true"
            review = row["matched"] == "true" and not got
            counts["review_matches"] += review
            counts["review_false"] += review and not expected
            counts["expected_matches"] += expected
            counts["matches"] += got
            counts["false_matches"] += got and not expected
            counts["missed_matches"] += expected and not got
    return counts


def _probe(
    config: RequesterConfig, audit: AuditLog, engine: BatchEngine, reason: str, nonce_used: bytes
) -> str:
    """Ask the live holder for one session crafted to be refused for ``reason``; returns the status name."""
    officials = config.official.key_file.parent
    official, key_file, organisation, mode = PRIMARY_OFFICIAL, config.official.key_file, REQUESTER_ORG, Mode.MEMBERSHIP
    count, nonce, issued = 1, secrets.token_bytes(16), datetime.now(UTC).replace(microsecond=0)
    signer: Ed25519PrivateKey | None = None
    if reason == "unknown_official":
        official, signer = "Mallory Nobody", Ed25519PrivateKey.generate()
    elif reason == "wrong_organisation":
        official, key_file, organisation = OTHER_OFFICIAL, officials / "olga.key", OTHER_ORG
    elif reason == "expired":
        issued -= timedelta(hours=2)
    elif reason == "replayed":
        nonce = nonce_used
    elif reason == "over_budget":
        count = SESSION_MAX_RECORDS + 1
    elif reason == "mode_not_allowed":
        official, key_file, mode = SECOND_OFFICIAL, officials / "bob.key", Mode.CARDINALITY
    elif reason == "too_few_records":  # one element is below the policy's cardinality minimum
        mode = Mode.CARDINALITY
    try:
        _signed_session(config, audit, engine, official, signer or load_official_key(key_file), organisation, mode,
                        count, nonce, issued, tamper=reason == "unsigned")
    except HolderRefused as exc:
        return exc.status
    return "OK"


def _signed_session(
    config: RequesterConfig,
    audit: AuditLog,
    engine: BatchEngine,
    official: str,
    key: Ed25519PrivateKey,
    organisation: str,
    mode: Mode,
    count: int,
    nonce: bytes,
    issued: datetime,
    tamper: bool = False,
) -> None:
    """One session of ``count`` throw-away keys under the given official and request fields."""
    with HolderClient(config.holder) as client:
        info = client.info()
        wanted = next(i for i in info.indexes if i.kind == MODE_TO_PB[mode])
        path = config.index_dir / f"probe-{mode.value}-{wanted.digest.hex()[:32]}.bmidx"
        if not path.exists():
            config.index_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            client.download_index(mode, wanted.digest, path)
        index = EncryptedIndex.parse(path.read_bytes())
        session_id = secrets.token_bytes(16)
        keys = [b"blindmatch demo probe " + secrets.token_bytes(8) for _ in range(count)]
        session = RequesterSession(keys, mode, index, session_id, min(1024, info.limits.max_batch), engine)
        request = SessionRequest(
            organisation=organisation, official=official, mode=mode.value, record_count=count, held_back=0,
            legal_basis=config.official.legal_basis, nonce=nonce, issued_at=issued,
            expires_at=issued + timedelta(minutes=15), session_id=session_id, key_id=info.key_id,
            index_digest=index.digest, blinded_commitment=session.blinded_commitment,
        )
        envelope = sign_request(request, key)
        if tamper:
            envelope = envelope[:-1] + bytes([envelope[-1] ^ 1])
        run_session(client, audit, session, request, envelope, config.holder.name, 4, info.audit_public_key,
                    lambda _batch: None)


# The refusals the legal setting names; the demo's JSON reports exactly these under "refusals".
SEVEN_REFUSALS = ("unsigned", "unknown_official", "wrong_organisation", "expired", "replayed", "over_budget",
                  "mode_not_allowed")
OTHER_REFUSALS = ("too_few_records",)


def try_refusals(config: RequesterConfig, engine: BatchEngine) -> dict[str, str]:
    """Each refusal reason against the live holder: reason -> gRPC status name it returned."""
    nonce = secrets.token_bytes(16)
    with AuditLog.open(config.audit_dir, config.audit_origin) as audit:
        # A granted one-key session records the nonce that the replay probe reuses.
        _signed_session(config, audit, engine, PRIMARY_OFFICIAL, load_official_key(config.official.key_file),
                        REQUESTER_ORG, Mode.MEMBERSHIP, 1, nonce, datetime.now(UTC).replace(microsecond=0))
        return {reason: _probe(config, audit, engine, reason, nonce) for reason in (*SEVEN_REFUSALS, *OTHER_REFUSALS)}


def run_match(workspace: Workspace, results: Path) -> dict[str, object]:
    """``blindmatch requester match`` as a subprocess; its JSON summary."""
    done = subprocess.run(
        blindmatch_command("requester", "match", str(workspace.queries), "--config", str(workspace.requester_config),
                           "--out", str(results), "--json", "--no-progress"),
        capture_output=True, text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"requester match exited {done.returncode}: {done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_demo(root: Path) -> dict[str, object]:
    """Build, serve, match, compare, probe the refusals, stop; the summary the CLI prints."""
    started = time.monotonic()
    workspace = create_workspace(root)
    build_index(workspace)
    holder = HolderProcess(workspace.holder_config, workspace.root / "logs")
    holder.start()
    try:
        results = workspace.requester_dir / "results.csv"
        match = run_match(workspace, results)
        truth = json.loads(workspace.truth.read_text())
        counts = compare_results(results, truth)
        engine = BatchEngine()
        try:
            refusals = try_refusals(load_requester_config(workspace.requester_config), engine)
        finally:
            engine.close()
    finally:
        holder_exit = holder.terminate()
    audit = check_audit(workspace)
    return {
        "workdir": str(workspace.root),
        "holder_records": sum(1 for _ in workspace.records.open(encoding="utf-8")) - 1,
        "queries": len(truth),
        **counts,
        "job_id": match["job_id"],
        "results": str(results),
        "refusals": {reason: refusals[reason] for reason in SEVEN_REFUSALS},
        "other_refusals": {reason: refusals[reason] for reason in OTHER_REFUSALS},
        "holder_exit_code": holder_exit,
        "audit": audit,
        "seconds": round(time.monotonic() - started, 2),
    }


def check_audit(workspace: Workspace) -> dict[str, str]:
    """What a reviewer would run on the two logs: verify each, then reconcile the pair."""
    holder = verify_log(workspace.holder_dir)
    requester = verify_log(workspace.requester_dir)
    paired = reconcile(workspace.holder_dir, workspace.requester_dir)
    return {
        "holder": "ok" if holder.ok else f"failed: {holder.error}",
        "requester": "ok" if requester.ok else f"failed: {requester.error}",
        "reconcile": "ok" if paired.ok else "failed: " + "; ".join(paired.mismatches[:3]),
    }


def demo_ok(summary: dict[str, object]) -> bool:
    refusals = summary["refusals"]
    others = summary["other_refusals"]
    assert isinstance(refusals, dict) and isinstance(others, dict)
    return (
        summary["matches"] == summary["expected_matches"]
        and summary["false_matches"] == 0
        and summary["missed_matches"] == 0
        and summary["ineligible_answered"] == 0
        and set(refusals) == set(SEVEN_REFUSALS)
        and all(status != "OK" for status in (*refusals.values(), *others.values()))
        and all(state == "ok" for state in summary["audit"].values())  # type: ignore[union-attr]
    )
