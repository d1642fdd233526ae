"""The pilot's issuer, and the requester that tries to get around it.

``install_issuer`` adds the issuing authority to a workspace: its certificate from the
same CA, issuer.toml naming the holder with its record count, ``[holder.issuer]`` in
holder.toml (so the holder's index is built over tokens) and ``[eligibility]`` in
requester.toml. ``issue`` runs ``blindmatch issuer issue`` on the requester's records.
``try_without_tokens`` plays a requester that switches its own eligibility check off
and makes stand-in tokens under a key it made up for every ineligible person the holder
has: it counts how many of them match (none should).
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
from datetime import date
from pathlib import Path

from blindmatch.audit import AuditLog
from blindmatch.crypto import group, voprf
from blindmatch.crypto.batch import BatchEngine
from blindmatch.csvrows import as_record, read_rows
from blindmatch.issuer.keys import create_seed, create_signing_key
from blindmatch.issuer.tokenfile import TokenFile, read_token_file
from blindmatch.keyfile import public_key_path
from blindmatch.normalize import NormalizationError, resolve_schema
from blindmatch.pilot.officials import approve_job
from blindmatch.pilot.processes import blindmatch_command
from blindmatch.pilot.workspace import HOLDER_ORG, Workspace, free_port, install_service_pki
from blindmatch.requester.config import load_requester_config
from blindmatch.requester.inputs import Elements
from blindmatch.requester.jobs import Job, JobStore
from blindmatch.requester.runner import JobRunner
from blindmatch.requester.token_inputs import prepare_token_elements
from blindmatch.vocabulary import Mode

ISSUER_ORG = "Example State Courts"
ISSUER_NAME = "courts.example"


def issuer_config_path(workspace: Workspace) -> Path:
    return workspace.root / "issuer" / "issuer.toml"


def tokens_path(workspace: Workspace) -> Path:
    return workspace.requester_dir / "tokens.txt"


def install_issuer(workspace: Workspace) -> Path:
    """Add the issuer to ``workspace`` (once); returns issuer.toml."""
    config = issuer_config_path(workspace)
    if config.exists():
        return config
    issuer = config.parent
    install_service_pki(workspace, issuer, ISSUER_ORG, "issuer")
    records = sum(1 for _ in workspace.records.open(encoding="utf-8")) - 1
    port = free_port()
    config.write_text(
        f'[issuer]\nname = "{ISSUER_NAME}"\nseed_file = "issuer.seed"\nsigning_key = "issuer.key"\n'
        f'state_dir = "state"\nschema = "../holder/schema.toml"\nlisten = "127.0.0.1:{port}"\n\n'
        f'[issuer.tls]\ncert = "pki/server.crt"\nkey = "pki/server.key"\nclient_ca = "pki/ca.crt"\n\n'
        f'[[issuer.holder]]\norganisation = "{HOLDER_ORG}"\nrecords = {records}\nmargin = 0.05\n')
    create_seed(issuer / "issuer.seed")
    create_signing_key(issuer / "issuer.key")
    shutil.copy(public_key_path(issuer / "issuer.key"), workspace.requester_dir / "issuer.key.pub")
    with workspace.holder_config.open("a", encoding="utf-8") as handle:
        handle.write(f'\n[holder.issuer]\naddress = "127.0.0.1:{port}"\nca_cert = "pki/ca.crt"\n'
                     'cert = "pki/issuer-client.crt"\nkey = "pki/issuer-client.key"\n')
    with workspace.requester_config.open("a", encoding="utf-8") as handle:
        handle.write('\n[eligibility]\nissuer_key = "issuer.key.pub"\ntokens = "tokens.txt"\n')
    return config


def orders_path(workspace: Workspace) -> Path:
    return workspace.requester_dir / "orders.csv"


def issue(workspace: Workspace) -> dict[str, int]:
    """The court's records with their order status, through ``issuer issue``; counts of the result."""
    with workspace.queries.open(encoding="utf-8", newline="") as source, \
            orders_path(workspace).open("w", encoding="utf-8", newline="") as target:
        reader = csv.DictReader(source)
        writer = csv.DictWriter(target, fieldnames=[*(reader.fieldnames or []), "order_status"])
        writer.writeheader()
        writer.writerows({**row, "order_status": "final"} for row in reader)
    done = subprocess.run(blindmatch_command("issuer", "issue", str(orders_path(workspace)), "--config",
                                             str(issuer_config_path(workspace)), "--out", str(tokens_path(workspace))),
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"issuer issue exited {done.returncode}: {done.stderr.strip()[-2000:]}")
    tokens = _read_tokens(workspace)
    with read_rows(workspace.queries) as queries:
        rows = sum(1 for _ in queries)
    return {"eligible_records": len(tokens.tokens), "tokens_issued": len(tokens.tokens),
            "ineligible_records": rows - len(tokens.tokens)}


def _read_tokens(workspace: Workspace) -> TokenFile:
    key = bytes.fromhex((workspace.requester_dir / "issuer.key.pub").read_text().strip())
    return read_token_file(tokens_path(workspace), key)


class _NoCheckRunner(JobRunner):
    """A requester's own client: no eligibility check, stand-in tokens. Pilot only, no config switch."""

    stand_in: TokenFile

    def _elements(self, job: Job, mode: Mode, prepared_on: date) -> tuple[Elements, list[tuple[int, str, int]]]:
        return prepare_token_elements(job.queries_path, self.stand_in, self.schema, mode, prepared_on,
                                      check_basis=False, check_records=False)


def try_without_tokens(workspace: Workspace) -> tuple[int, int]:
    """``(tried, matched)``: ineligible people the holder has, queried with made-up tokens, and how many matched (0)."""
    real = _read_tokens(workspace)
    truth = json.loads(workspace.truth.read_text())
    config = load_requester_config(workspace.requester_config)
    schema = resolve_schema(config.matching.schema)
    made_up = group.random_scalar()
    targets: dict[int, list[bytes | None]] = {}
    with read_rows(workspace.queries) as queries:
        for number, values in queries:
            if number in real.tokens or not truth[number - 1]:
                continue  # only the ineligible people the holder has
            try:
                keys = schema.match_keys(as_record(queries.header, values), "requester", number)
            except NormalizationError:
                continue
            row: list[bytes | None] = [None] * len(schema.tier_names())
            for tier_name, key in keys:
                row[schema.tier_rank[tier_name]] = voprf.evaluate(made_up, key)
            if keys:
                targets[number] = row
    stand_in = TokenFile(real.header, targets)
    out = workspace.requester_dir / "results-without-tokens.csv"
    engine = BatchEngine()
    try:
        with AuditLog.open(config.audit_dir, config.audit_origin) as audit:
            runner = _NoCheckRunner(config, JobStore(config.store_path), audit, engine)
            runner.stand_in = stand_in
            job, _ = runner.submit(workspace.queries, out, Mode.MEMBERSHIP)
            if runner.run(job.id).exit_state == "awaiting_approval":
                approve_job(workspace, job.id)  # its officials sign what this client prepared
            if runner.run(job.id).exit_state != "succeeded":
                raise RuntimeError(f"the adversary's job ended {runner.store.get(job.id).state}")
    finally:
        engine.close()
    with read_rows(out) as results:
        matched = sum(1 for number, values in results
                      if number in targets and as_record(results.header, values)["matched"] == "true")
    return len(targets), matched
