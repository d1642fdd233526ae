"""The issuer daemon over mutual TLS: holders get verified blind evaluations, requesters nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from grpc_health.v1 import health_pb2, health_pb2_grpc

from blindmatch.audit import load_entries
from blindmatch.audit.log import AuditLog
from blindmatch.crypto import voprf
from blindmatch.crypto.batch import BatchEngine
from blindmatch.holder.tokens import IssuerTokens, parse_epoch
from blindmatch.issuer.client import IssuerClient, IssuerError
from blindmatch.issuer.config import IssuerConfig, load_issuer_config
from blindmatch.issuer.epochs import Epoch, epoch_key_pair
from blindmatch.issuer.issue import audit_origin
from blindmatch.issuer.keys import read_seed
from blindmatch.issuer.service import IssuerDaemon
from blindmatch.normalize import default_schema
from blindmatch.transport.pki import OrganisationFiles, init_pki
from tests.helpers.ca_certs import client_cert
from tests.helpers.issuer_setup import make_issuer

pytestmark = pytest.mark.timeout(120)
ISSUER_ORG, HOLDER_ORG, REQUESTER_ORG = "County Courts", "Example Tax Authority", "County Court of Example"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[IssuerConfig, IssuerDaemon, dict[str, OrganisationFiles]]]:
    root = tmp_path_factory.mktemp("issuerd")
    orgs = {f.organisation: f for f in init_pki(root / "pki", [ISSUER_ORG, HOLDER_ORG, REQUESTER_ORG], ["127.0.0.1"])}
    make_issuer(root, {HOLDER_ORG: 4})
    server = orgs[ISSUER_ORG]
    with (root / "issuer.toml").open("a") as handle:
        handle.write(f'\n[issuer.tls]\ncert = "{server.server_cert}"\nkey = "{server.server_key}"\n'
                     f'client_ca = "{root / "pki" / "ca.crt"}"\n')
    text = (root / "issuer.toml").read_text().replace('state_dir = "state"\n', 'state_dir = "state"\nlisten = "127.0.0.1:0"\n')
    (root / "issuer.toml").write_text(text)
    config = load_issuer_config(root / "issuer.toml")
    engine = BatchEngine(workers=1)
    daemon = IssuerDaemon(config, engine)
    daemon.start()
    yield config, daemon, orgs
    daemon.stop()
    engine.close()


def _client(live: tuple[IssuerConfig, IssuerDaemon, dict[str, OrganisationFiles]], org: str) -> IssuerClient:
    config, daemon, orgs = live
    files = orgs[org]
    return IssuerClient(f"127.0.0.1:{daemon.port}", config.tls.client_ca if config.tls else Path(),
                        files.client_cert, files.client_key)


def test_a_holder_gets_verified_tokens_within_its_count(live: tuple[IssuerConfig, IssuerDaemon, dict[str, OrganisationFiles]]) -> None:
    config = live[0]
    keys = [b"key one", b"key two", b"key three"]
    engine = BatchEngine(workers=1)
    with _client(live, HOLDER_ORG) as issuer:
        info = issuer.epoch()
        stage = IssuerTokens(lambda b: issuer.evaluate(info.epoch, b), info.public_key,
                             parse_epoch(info.epoch, info.not_before, info.expires), engine)
        sk = epoch_key_pair(read_seed(config.seed_file), Epoch.named(info.epoch))[0]
        assert stage.convert(keys) == [voprf.evaluate(sk, k) for k in keys]
        limit = 4 * len(default_schema().tier_names())  # 4 records x every tier
        stage.convert([b"key %d" % i for i in range(limit - len(keys))])
        with pytest.raises(IssuerError, match="over_budget"):
            stage.convert(keys[:1])
        with pytest.raises(IssuerError, match="key_mismatch"):
            issuer.evaluate("2001-01", bytes(32))
    engine.close()


def test_a_requester_is_never_served(live: tuple[IssuerConfig, IssuerDaemon, dict[str, OrganisationFiles]]) -> None:
    with _client(live, REQUESTER_ORG) as issuer:
        info = issuer.epoch()
        blinded = voprf.blind(b"anyone's key")[1]
        with pytest.raises(IssuerError, match="organisation_not_allowed"):
            issuer.evaluate(info.epoch, blinded)


def test_health_and_audit(live: tuple[IssuerConfig, IssuerDaemon, dict[str, OrganisationFiles]]) -> None:
    config, daemon, orgs = live
    files = orgs[HOLDER_ORG]
    from blindmatch.transport.tls import channel_credentials

    creds = channel_credentials(config.tls.client_ca if config.tls else Path(), files.client_key, files.client_cert,
                                IssuerError)
    with grpc.secure_channel(f"127.0.0.1:{daemon.port}", creds) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service="blindmatch.v1.Issuer"))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    with AuditLog.open(config.state_dir, audit_origin(config)) as log:
        assert log.size == 5  # the tests above: two evaluations, three refusals


def test_holder_index_command_builds_over_tokens_from_the_live_issuer(
    live: tuple[IssuerConfig, IssuerDaemon, dict[str, OrganisationFiles]], tmp_path: Path
) -> None:
    """``blindmatch holder index`` with [holder.issuer]: every entry is OPRF_holder(OPRF_issuer(key))."""
    import subprocess

    from blindmatch.core.index import EncryptedIndex
    from blindmatch.core.purpose import evaluation_info
    from blindmatch.crypto import poprf
    from blindmatch.holder.store import load_key_file, read_manifest
    from blindmatch.pilot.processes import blindmatch_command
    from blindmatch.vocabulary import Mode

    config, daemon, orgs = live
    holder = orgs[HOLDER_ORG]
    ca = config.tls.client_ca if config.tls else Path()
    records = [{"name": "Alice Smith", "address": "100 Main St, Springfield, IL 62701", "order_date": ""},
               {"name": "Bob Jones", "address": "7 Oak Ave Apt 2, Springfield, IL 62701", "order_date": ""}]
    (tmp_path / "records.csv").write_text("name,address,order_date\n" + "".join(
        f'"{r["name"]}","{r["address"]}",\n' for r in records))
    (tmp_path / "holder.toml").write_text(f"""\
[holder]
organisation = "{HOLDER_ORG}"
policy = "policy.toml"

[holder.tls]
cert = "{holder.server_cert}"
key = "{holder.server_key}"
client_ca = "{ca}"
allowed_organisations = ["{REQUESTER_ORG}"]

[holder.issuer]
address = "127.0.0.1:{daemon.port}"
ca_cert = "{ca}"
cert = "{holder.client_cert}"
key = "{holder.client_key}"
""")
    # The allowance of 4 records x 2 tiers is spent by the first test; give the holder a fresh one.
    before = daemon.evaluator.used(HOLDER_ORG, daemon.evaluator.public_key()[0])
    assert before == daemon.evaluator.limit(HOLDER_ORG)
    usage = config.state_dir / f"evaluations-{daemon.evaluator.public_key()[0].name}.json"
    usage.write_text("{}")
    done = subprocess.run(blindmatch_command("holder", "index", str(tmp_path / "records.csv"), "--config",
                                             str(tmp_path / "holder.toml"), "--quiet"),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    epoch, _ = daemon.evaluator.public_key()
    sk = epoch_key_pair(read_seed(config.seed_file), epoch)[0]
    holder_key = load_key_file(tmp_path / "oprf.key")
    manifest = read_manifest(tmp_path / "index")
    index_file = manifest.for_organisation(REQUESTER_ORG)[Mode.MEMBERSHIP]
    index = EncryptedIndex.parse(index_file.path.read_bytes())
    keys = [k for r in records for _, k in default_schema().match_keys(r, "holder")]
    assert daemon.evaluator.used(HOLDER_ORG, epoch) == len(keys)  # one per holder key, nothing more
    info = evaluation_info(REQUESTER_ORG, Mode.MEMBERSHIP, holder_key.key_id)
    composed = b"".join(poprf.evaluate(holder_key.sk, voprf.evaluate(sk, k), info) for k in keys)
    assert index.contains(composed).all()
    assert not index.contains(b"".join(poprf.evaluate(holder_key.sk, k, info) for k in keys)).any()


def test_a_made_up_epoch_is_refused_and_audited_not_an_internal_error(
    live: tuple[IssuerConfig, IssuerDaemon, dict[str, OrganisationFiles]]
) -> None:
    """Found live: a holder naming an epoch with a line break or over 200 characters got INTERNAL,
    because its text could not go into the ``why`` of the audit entry, and nothing was audited."""
    config = live[0]
    with _client(live, HOLDER_ORG) as issuer:
        for made_up in ("2026-12\nforged line", "9" * 5000):
            with pytest.raises(IssuerError, match="key_mismatch"):
                issuer.evaluate(made_up, bytes(32))
    whys = [e["why"] for e in load_entries(config.state_dir) if e["event"] == "blind_evaluation_refused"]
    assert any("'2026-12\\nforged line'" in why for why in whys), whys


@pytest.mark.parametrize("organisation", ["Evil\nOrg", "E" * 300, "Example\u202eCounty"])
def test_an_organisation_name_no_audit_entry_can_hold_is_refused_not_an_internal_error(
    live: tuple[IssuerConfig, IssuerDaemon, dict[str, OrganisationFiles]], tmp_path: Path, organisation: str
) -> None:
    """Found live: a CA-signed certificate whose O= is no identifier got INTERNAL from BlindEvaluate
    (its refusal could not be audited); it is refused like any organisation that is not a holder."""
    config, daemon, orgs = live
    pki = orgs[HOLDER_ORG].client_cert.parent.parent
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation, _validate=False)])
    certs = client_cert(pki, name, tmp_path / "odd")
    issuer = IssuerClient(f"127.0.0.1:{daemon.port}", config.tls.client_ca if config.tls else Path(),
                          certs / "client.crt", certs / "client.key")
    with issuer, pytest.raises(IssuerError, match="organisation_not_allowed"):
        issuer.evaluate("2026-01", voprf.blind(b"anyone's key")[1])
