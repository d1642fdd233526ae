"""A two-organisation workspace on one machine, written as a real deployment would be.

``create_workspace`` writes complete configuration files, so that after the demo a user
can run both sides by hand:

    DIR/ca/        the demo's certificate authority (a third party in a real deployment)
    DIR/holder/    holder.toml, policy.toml, schema.toml, records.csv, pki/ (CA certificate,
                   its server certificate), officials/*.pub, index/, oprf.key, audit/
    DIR/requester/ requester.toml, schema.toml, queries.csv, pki/ (CA, its client
                   certificate), audit/, state/ (no official's key)
    DIR/officials/ the officials' own encrypted keys (*.key) and the demo's passphrase
                   file: the officials are people, outside both daemons' directories
    DIR/truth.json which queries are true matches (the demo's answer key)
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import socket
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from importlib import resources
from pathlib import Path

import tomli_w

from blindmatch.audit.keys import load_or_create_signing_key, raw_public_key
from blindmatch.audit.log import AUDIT_SUBDIR, KEY_NAME, PUB_NAME
from blindmatch.holder.config import default_audit_origin
from blindmatch.holder.store import load_or_create_key
from blindmatch.keyfile import create_new_file
from blindmatch.pilot import synthetic
from blindmatch.policy import generate_official_key
from blindmatch.transport.pki import init_pki, slug

HOLDER_ORG = "Example Tax Authority"
REQUESTER_ORG = "Example County Court"
OTHER_ORG = "Other Agency"
PRIMARY_OFFICIAL = "Alice Clerk"
SECOND_OFFICIAL = "Bob Deputy"  # membership only: the mode_not_allowed probe
OTHER_OFFICIAL = "Olga Other"  # an official of OTHER_ORG: the wrong_organisation probe
LEGAL_BASIS = "Example Tax Administration Act s. 12 (court order)"
SESSION_MAX_RECORDS = 5_000
# The demo's own passphrase for every official's key (a real official chooses their own).
DEMO_PASSPHRASE = b"blindmatch demo officials"
DAY_RECORDS = 200_000


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

    @property
    def officials_dir(self) -> Path:
        """The officials' keys: neither daemon's directory."""
        return self.root / "officials"

    @property
    def passphrase_file(self) -> Path:
        return self.officials_dir / "passphrase"


def free_port() -> int:
    """A loopback port free right now (the holder binds it moments later)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


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
    dual_control_records: int | None = None,
) -> Workspace:
    """Write both organisations' files under ``root`` (reused as is when already complete).

    ``holder_limits`` and ``matching`` override entries of holder.toml's ``[holder.limits]``
    and requester.toml's ``[matching]`` (tests use tiny chunks and batches).
    ``dual_control_records`` sets the policy's dual-control session size. Officials approve
    each job with ``blindmatch official approve`` (``pilot.officials`` plays them); no
    official's key is in the requester's directory.
    """
    root = Path(root).resolve()
    holder, requester = root / "holder", root / "requester"
    existing = root / "workspace.json"
    if existing.is_file():
        saved = json.loads(existing.read_text())
        return Workspace(root, holder / "holder.toml", requester / "requester.toml", holder / "records.csv",
                         requester / "queries.csv", root / "truth.json", saved["port"])
    port = port or free_port()
    for directory in (holder, requester, holder / "officials", root / "officials", requester / "pki"):
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

    _install_pki(root, holder, requester)
    _write_policy(root, holder, dual_control_records)
    _write_configs(holder, requester, port, holder_limits, matching, _holder_keys(holder))
    existing.write_text(json.dumps({"port": port}))
    return Workspace(root, holder / "holder.toml", requester / "requester.toml", holder / "records.csv",
                     requester / "queries.csv", root / "truth.json", port)


def _install_pki(root: Path, holder: Path, requester: Path) -> None:
    """The CA stands for a third party: each side receives only the CA certificate and
    its own certificate and key, never the other side's private key."""
    pki = root / "ca"
    files = {f.organisation: f for f in init_pki(pki, [HOLDER_ORG, REQUESTER_ORG], ["localhost", "127.0.0.1"])}
    (holder / "pki").mkdir(mode=0o700, exist_ok=True)
    for side, org, kind in ((holder, HOLDER_ORG, "server"), (requester, REQUESTER_ORG, "client")):
        shutil.copy(pki / "ca.crt", side / "pki" / "ca.crt")
        for suffix in (".crt", ".key"):
            shutil.copy(files[org].directory / f"{kind}{suffix}", side / "pki" / f"{kind}{suffix}")
        os.chmod(side / "pki" / f"{kind}.key", 0o600)


def install_service_pki(workspace: Workspace, directory: Path, organisation: str, client_name: str) -> None:
    """PKI for a daemon the holder calls (issuer, witness): its server certificate under the
    workspace's CA in ``directory/pki``, and the holder's client certificate copied beside the
    holder's own as ``{client_name}-client``; private keys 0600."""
    (directory / "pki").mkdir(parents=True, mode=0o700)
    ca = workspace.root / "ca"
    files = init_pki(ca, [organisation], ["localhost", "127.0.0.1"])[0]
    shutil.copy(ca / "ca.crt", directory / "pki" / "ca.crt")
    holder_pki = workspace.holder_dir / "pki"
    for suffix in (".crt", ".key"):
        shutil.copy(files.directory / f"server{suffix}", directory / "pki" / f"server{suffix}")
        shutil.copy(ca / slug(HOLDER_ORG) / f"client{suffix}", holder_pki / f"{client_name}-client{suffix}")
    os.chmod(directory / "pki" / "server.key", 0o600)
    os.chmod(holder_pki / f"{client_name}-client.key", 0o600)


def _write_policy(root: Path, holder: Path, dual_control_records: int | None) -> None:
    """Three officials' encrypted keys (in DIR/officials, theirs) and the holder's policy naming them."""
    officials = {}
    create_new_file(root / "officials" / "passphrase", DEMO_PASSPHRASE + b"\n", 0o600)
    for name, filename in ((PRIMARY_OFFICIAL, "alice.key"), (SECOND_OFFICIAL, "bob.key"), (OTHER_OFFICIAL, "olga.key")):
        key = generate_official_key(name, root / "officials" / filename, DEMO_PASSPHRASE)
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
    dual = {} if dual_control_records is None else {"dual_control_records": dual_control_records}
    _toml(holder / "policy.toml", {"organisations": {
        REQUESTER_ORG: {**limits, **dual, "officials": [
            official(PRIMARY_OFFICIAL, "Clerk of the court", ["membership", "cardinality"]),
            official(SECOND_OFFICIAL, "Deputy clerk", ["membership"]),
        ]},
        OTHER_ORG: {**limits, "officials": [official(OTHER_OFFICIAL, "Investigator", ["membership"])]},
    }})


def _holder_keys(holder: Path) -> dict[str, str]:
    """Create the holder's OPRF and audit keys now, so the requester's configuration can pin them.

    In a real deployment the holder's operator hands these public values over out of band
    (``blindmatch holder pins``); here both organisations' files are written together.
    """
    oprf_key, _ = load_or_create_key(holder / "oprf.key")
    audit_dir = holder / AUDIT_SUBDIR
    audit_dir.mkdir(mode=0o700, exist_ok=True)
    audit_key = load_or_create_signing_key(audit_dir / KEY_NAME, audit_dir / PUB_NAME, default_audit_origin(HOLDER_ORG))
    return {"organisation": HOLDER_ORG, "oprf_public_key": oprf_key.public_key.hex(),
            "audit_public_key": raw_public_key(audit_key).hex()}


def _write_configs(
    holder: Path, requester: Path, port: int, holder_limits: dict[str, object] | None, matching: dict[str, object] | None,
    pins: dict[str, str],
) -> None:
    _toml(holder / "holder.toml", {"holder": {
        "organisation": HOLDER_ORG, "listen": f"127.0.0.1:{port}", "key_file": "oprf.key", "index_dir": "index",
        "schema": "schema.toml", "policy": "policy.toml", "budget_db": "state/budget.sqlite3", "audit_dir": ".",
        "limits": {"shutdown_grace_seconds": 5.0, **(holder_limits or {})},
        "tls": {"cert": "pki/server.crt", "key": "pki/server.key",
                "client_ca": "pki/ca.crt", "allowed_organisations": [REQUESTER_ORG]},
    }})
    _toml(requester / "requester.toml", {
        "organisation": REQUESTER_ORG, "state_dir": "state",
        "holder": {"address": f"127.0.0.1:{port}", "name": HOLDER_ORG, **pins, "ca_cert": "pki/ca.crt",
                   "cert": "pki/client.crt", "key": "pki/client.key", "server_name": "localhost",
                   "retry_seconds": 30},
        "official": {"name": PRIMARY_OFFICIAL, "legal_basis": LEGAL_BASIS,
                     "request_lifetime_seconds": 3600},
        "matching": {"mode": "membership", "schema": "schema.toml", "batch_size": 1024, "window": 4, **(matching or {})},
        "audit": {"dir": ".", "origin": "requester/example-county-court"},
        "service": {"listen": "unix", "max_parallel_jobs": 8},
    })
