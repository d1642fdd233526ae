"""The issuer daemon over mutual TLS: holders get verified blind evaluations, requesters nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from blindmatch.audit.log import AuditLog
from blindmatch.crypto import voprf
from blindmatch.crypto.batch import BatchEngine
from blindmatch.holder.tokens import IssuerTokens
from blindmatch.issuer.client import IssuerClient, IssuerError
from blindmatch.issuer.config import IssuerConfig, load_issuer_config
from blindmatch.issuer.epochs import Epoch, epoch_key_pair
from blindmatch.issuer.issue import audit_origin
from blindmatch.issuer.keys import read_seed
from blindmatch.issuer.service import IssuerDaemon
from blindmatch.transport.pki import OrganisationFiles, init_pki
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
        stage = IssuerTokens(lambda b: issuer.evaluate(info.epoch, b), info.public_key, info.epoch, engine)
        sk = epoch_key_pair(read_seed(config.seed_file), Epoch.named(info.epoch))[0]
        assert stage.convert(keys) == [voprf.evaluate(sk, k) for k in keys]
        stage.convert(keys + keys[:2])  # 8 of 4 records x 2 tiers
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
