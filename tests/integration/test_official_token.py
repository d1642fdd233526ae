"""An official whose approval key lives in a PKCS#11 token (SoftHSM) approves a job.

The key pair is created inside a fresh SoftHSM token (``official keygen
--official-config``), the holder's policy names its public key, and ``official approve
--official-config`` signs the prepared requests on the token: the signature verifies
strictly and the holder accepts it. An imported key signs byte for byte as RFC 8032
Ed25519 does. A wrong PIN, a missing key label, a missing or
broken module, an unset PIN variable: a clear error, nothing is stored, the job waits.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from blindmatch.audit import AuditLog
from blindmatch.cli.main import main
from blindmatch.crypto.batch import BatchEngine
from blindmatch.crypto.ed25519 import verify_strict
from blindmatch.pilot.processes import HolderProcess, build_index
from blindmatch.pilot.workspace import Workspace, create_workspace
from blindmatch.requester.approvals import Approvals
from blindmatch.requester.config import load_requester_config
from blindmatch.requester.jobs import JobStore
from blindmatch.requester.runner import JobRunner
from blindmatch.vocabulary import ExitCode, JobState, Mode
from tests.helpers.softhsm import USER_PIN, SoftHsm, softhsm_in

pytestmark = pytest.mark.timeout(180)
PIN_VARIABLE = "BLINDMATCH_TEST_TOKEN_PIN"
TOKEN = "alice-token"
KEY_LABEL = "blindmatch-approval"


def official_config(path: Path, hsm: SoftHsm, *, library: str | None = None, key_label: str = KEY_LABEL,
                    pin_env: str | None = PIN_VARIABLE) -> Path:
    pin_line = f'pin_env = "{pin_env}"\n' if pin_env else ""
    path.write_text(f'[pkcs11]\nlibrary = "{library or hsm.module}"\ntoken_label = "{TOKEN}"\n'
                    f'key_label = "{key_label}"\n{pin_line}')
    return path


@pytest.fixture(scope="module")
def hsm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SoftHsm]:
    hsm = softhsm_in(tmp_path_factory.mktemp("softhsm"))
    hsm.init_token(TOKEN)
    saved = {name: os.environ.get(name) for name in ("SOFTHSM2_CONF", PIN_VARIABLE)}
    os.environ["SOFTHSM2_CONF"] = str(hsm.conf)
    os.environ[PIN_VARIABLE] = USER_PIN
    yield hsm
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="module")
def workspace(hsm: SoftHsm, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Workspace, bytes]]:
    """Alice's key is made on the token; the holder's policy lists its public half as hers."""
    ws = create_workspace(tmp_path_factory.mktemp("token"), holder_records=200, queries=20, matching={"batch_size": 16})
    config = official_config(ws.officials_dir / "alice-token.toml", hsm)
    out = ws.root / "keygen.json"
    with out.open("w") as handle, contextlib.redirect_stdout(handle):  # capsys is per test
        assert main(["official", "keygen", "--name", "Alice Clerk", "--official-config", str(config),
                     "--organisation", "Example County Court", "--role", "Clerk", "--json"]) == 0
    public_b64 = json.loads(out.read_text())["public_key"]
    (ws.holder_dir / "officials" / "alice.key.pub").write_text(public_b64 + "\n")
    build_index(ws)
    holder = HolderProcess(ws.holder_config, ws.root / "logs")
    holder.start()
    yield ws, base64.b64decode(public_b64)
    holder.terminate()


@pytest.fixture
def runner(workspace: tuple[Workspace, bytes]) -> Iterator[JobRunner]:
    config = load_requester_config(workspace[0].requester_config)
    config.state_dir.mkdir(parents=True, exist_ok=True)
    engine = BatchEngine()
    with AuditLog.open(config.audit_dir, config.audit_origin) as audit:
        yield JobRunner(config, JobStore(config.store_path), audit, engine)
    engine.close()


def _prepared(runner: JobRunner, ws: Workspace, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[str, str]:
    job, _ = runner.submit(ws.queries, tmp_path / "results.csv", Mode.MEMBERSHIP)
    assert runner.run(job.id).exit_state == JobState.AWAITING_APPROVAL
    capsys.readouterr()
    assert main(["official", "show", job.id, "--json", "--config", str(ws.requester_config)]) == 0
    return job.id, str(json.loads(capsys.readouterr().out)["digest"])


def _approve(ws: Workspace, job_id: str, digest: str, config: Path) -> int:
    return main(["official", "approve", job_id, "--config", str(ws.requester_config),
                 "--official-config", str(config), "--digest", digest])


def test_a_token_key_approves_and_the_holder_accepts_it(
    workspace: tuple[Workspace, bytes], runner: JobRunner, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ws, token_public = workspace
    job_id, digest = _prepared(runner, ws, tmp_path, capsys)
    assert _approve(ws, job_id, digest, ws.officials_dir / "alice-token.toml") == 0
    assert USER_PIN not in capsys.readouterr().out
    sessions = Approvals(runner.store).pending(job_id)
    assert sessions and all(len(s.signatures) == 1 for s in sessions)
    for session in sessions:
        public_key, signature = session.signatures[0]
        assert public_key == token_public
        assert verify_strict(public_key, signature, session.request.encode())
    final = runner.run(job_id).job
    assert final.state == JobState.SUCCEEDED, final.error


def test_a_second_key_under_the_same_label_is_refused(
    workspace: tuple[Workspace, bytes], hsm: SoftHsm, capsys: pytest.CaptureFixture[str]
) -> None:
    ws, _ = workspace
    assert main(["official", "keygen", "--name", "Alice Clerk",
                 "--official-config", str(ws.officials_dir / "alice-token.toml")]) == ExitCode.FAILURE
    assert "already holds an object labelled 'blindmatch-approval'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("case", "expected", "code"),
    [
        ("wrong_pin", f"wrong PIN for token '{TOKEN}'", ExitCode.FAILURE),
        ("missing_key", "no Ed25519 private key labelled 'no-such-key'", ExitCode.FAILURE),
        ("missing_library", "PKCS#11 library /nonexistent/libpkcs11.so does not exist", ExitCode.FAILURE),
        ("not_a_module", "cannot load PKCS#11 library", ExitCode.FAILURE),
        ("unset_pin_variable", "pkcs11.pin_env names BLINDMATCH_TEST_UNSET_PIN, which is not set", ExitCode.USAGE),
        ("no_terminal_for_the_pin", f"no terminal to ask for the PIN of token '{TOKEN}'", ExitCode.USAGE),
    ],
)
def test_token_problems_are_clear_and_the_job_waits(
    case: str, expected: str, code: ExitCode, workspace: tuple[Workspace, bytes], hsm: SoftHsm, runner: JobRunner,
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ws, _ = workspace
    job_id, digest = _prepared(runner, ws, tmp_path, capsys)
    config = tmp_path / "official.toml"
    if case == "wrong_pin":
        monkeypatch.setenv(PIN_VARIABLE, "000000")
        official_config(config, hsm)
    elif case == "missing_key":
        official_config(config, hsm, key_label="no-such-key")
    elif case == "missing_library":
        official_config(config, hsm, library="/nonexistent/libpkcs11.so")
    elif case == "not_a_module":
        (tmp_path / "not-a-module.so").write_bytes(b"\x7fELF not really")
        official_config(config, hsm, library=str(tmp_path / "not-a-module.so"))
    elif case == "unset_pin_variable":
        official_config(config, hsm, pin_env="BLINDMATCH_TEST_UNSET_PIN")
    else:
        official_config(config, hsm, pin_env=None)  # asked on the terminal, and pytest's stdin is none
    assert _approve(ws, job_id, digest, config) == code
    err = capsys.readouterr().err
    assert expected in err and "nothing was signed" in err
    assert USER_PIN not in err and "000000" not in err
    assert runner.store.get(job_id).state == JobState.AWAITING_APPROVAL
    assert all(not s.signatures for s in Approvals(runner.store).pending(job_id))
    assert not runner.store.has_sessions(job_id)  # nothing was sent


def test_an_official_config_may_name_a_key_file_instead(
    workspace: tuple[Workspace, bytes], runner: JobRunner, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``[key] file``: the encrypted PEM key, its passphrase as with ``--key``; the store checks the
    signature against Bob's own key and keeps it (the job then waits for its named official)."""
    ws, _ = workspace
    job_id, digest = _prepared(runner, ws, tmp_path, capsys)
    config = tmp_path / "bob.toml"
    config.write_text(f'[key]\nfile = "{ws.officials_dir / "bob.key"}"\n')
    assert main(["official", "approve", job_id, "--config", str(ws.requester_config), "--official-config", str(config),
                 "--passphrase-file", str(ws.passphrase_file), "--digest", digest, "--await-cosigner"]) == 0
    pending = Approvals(runner.store).pending(job_id)
    assert pending and all(len(s.signatures) == 1 for s in pending)


def _import_key(hsm: SoftHsm, token_label: str, label: str, seed: bytes) -> None:
    """Put an existing Ed25519 key into a token as a vendor's import tool would (CKA_VALUE = the seed)."""
    import pkcs11
    from pkcs11 import Attribute, KeyType, ObjectClass
    from pkcs11.util.ec import encode_named_curve_parameters

    public = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()
    params = encode_named_curve_parameters("1.3.101.112")
    lib = pkcs11.lib(str(hsm.module))
    try:
        with lib.get_token(token_label=token_label).open(user_pin=USER_PIN, rw=True) as session:
            session.create_object({
                Attribute.CLASS: ObjectClass.PRIVATE_KEY, Attribute.KEY_TYPE: KeyType.EC_EDWARDS, Attribute.TOKEN: True,
                Attribute.PRIVATE: True, Attribute.SENSITIVE: True, Attribute.SIGN: True, Attribute.LABEL: label,
                Attribute.EC_PARAMS: params, Attribute.VALUE: seed,
            })
            session.create_object({
                Attribute.CLASS: ObjectClass.PUBLIC_KEY, Attribute.KEY_TYPE: KeyType.EC_EDWARDS, Attribute.TOKEN: True,
                Attribute.VERIFY: True, Attribute.LABEL: label, Attribute.EC_PARAMS: params,
                Attribute.EC_POINT: b"\x04\x20" + public,
            })
    finally:
        lib.finalize()


def test_an_imported_key_signs_exactly_as_ed25519_does(
    workspace: tuple[Workspace, bytes], hsm: SoftHsm, runner: JobRunner, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A key made elsewhere and imported: ``keygen --existing`` prints its entry, and the token's
    CKM_EDDSA signatures are byte for byte RFC 8032's (Ed25519 is deterministic)."""
    ws, _ = workspace
    seed = bytes(range(100, 132))
    _import_key(hsm, TOKEN, "imported", seed)
    config = official_config(tmp_path / "imported.toml", hsm, key_label="imported")
    capsys.readouterr()
    assert main(["official", "keygen", "--name", "Bob Deputy", "--official-config", str(config), "--existing",
                 "--json"]) == 0
    reference = Ed25519PrivateKey.from_private_bytes(seed)
    shown = json.loads(capsys.readouterr().out)
    assert base64.b64decode(shown["public_key"]) == reference.public_key().public_bytes_raw()
    assert shown["key_label"] == "imported" and "Bob Deputy" in shown["policy_snippet"]
    job_id, digest = _prepared(runner, ws, tmp_path, capsys)
    assert main(["official", "approve", job_id, "--config", str(ws.requester_config), "--official-config", str(config),
                 "--digest", digest, "--await-cosigner"]) == 0
    for session in Approvals(runner.store).pending(job_id):
        assert session.signatures == ((reference.public_key().public_bytes_raw(),
                                       reference.sign(session.request.encode())),)
