"""Shared fixtures, and the test tiers: markers are applied by folder.

* ``tests/unit/``: the layers without daemons (crypto, normalize, policy, audit, core, vocabulary);
* ``tests/integration/``: daemons, subprocesses and the command line (marker ``integration``);
* ``tests/e2e/``: the whole pilot and the report in Chromium (marker ``e2e``).

``slow`` marks what takes more than a few seconds: every end-to-end test, and the
modules listed in ``SLOW_MODULES`` (measured with ``--durations``).
``pytest -m "not slow"`` is the quick loop; plain ``pytest`` runs everything.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.audit_pairs import copy_pair, write_pair
from helpers.witness_setup import WitnessSetup, make_setup

from blindmatch.crypto.batch import BatchEngine

TESTS = Path(__file__).resolve().parent
# Modules of any tier whose tests together take over about a second (integration) or three
# seconds (unit, fuzz) on 2 cores, measured with ``pytest -m 'not slow' --durations=0``: the
# quick loop keeps the architecture, oracle and vector checks and stays under a minute.
SLOW_MODULES = frozenset({
    "test_audit_log.py",
    "test_bench.py",
    "test_bench_cluster.py",
    "test_cardinality_proof_jobs.py",
    "test_cli_keys.py",
    "test_crypto_proven_batch.py",
    "test_eligibility_tokens.py",
    "test_fuzz_csv.py",
    "test_holder_audit_key_rotation.py",
    "test_holder_daemon.py",
    "test_holder_faults.py",
    "test_holder_hostile.py",
    "test_holder_revocation.py",
    "test_holder_rotation.py",
    "test_holder_service.py",
    "test_issuer_daemon.py",
    "test_issuer_epoch_refresh.py",
    "test_key_change_mid_job.py",
    "test_key_rotation_statements.py",
    "test_live_attacks.py",
    "test_normalize_steward_cli.py",
    "test_official_token.py",
    "test_privacy.py",
    "test_requester_approval.py",
    "test_requester_daemon.py",
    "test_requester_jobs.py",
    "test_requester_resume.py",
    "test_requester_store_faults.py",
    "test_requester_witnessing.py",
    "test_row_numbers.py",
    "test_synthetic.py",
    "test_token_stage_resume.py",
    "test_witness_daemon.py",
})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        path = Path(str(item.path)).resolve()
        tier = path.relative_to(TESTS).parts[0] if path.is_relative_to(TESTS) else ""
        if path.name in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)
        if tier == "integration":
            item.add_marker(pytest.mark.integration)
        elif tier == "e2e":
            item.add_marker(pytest.mark.e2e)
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def engine() -> Iterator[BatchEngine]:
    """One batch engine per test session (a thread pool sized to the machine)."""
    eng = BatchEngine()
    yield eng
    eng.close()


@pytest.fixture(scope="session")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A holder and requester audit log pair (``helpers.audit_pairs``), written once; copy before changing it."""
    root = tmp_path_factory.mktemp("pristine")
    write_pair(root)
    return root


@pytest.fixture()
def pair(pristine: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A fresh copy of the pristine pair: (holder_dir, requester_dir)."""
    return copy_pair(pristine, tmp_path)


@pytest.fixture()
def env(tmp_path: Path) -> WitnessSetup:
    """A witness deployment (``helpers.witness_setup``): PKI, witness key and config, a holder log of three sessions."""
    return make_setup(tmp_path)
