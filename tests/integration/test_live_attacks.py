"""Attacks first run by hand against the live demo daemons, kept as tests against a real holder over loopback mTLS."""

from __future__ import annotations

import datetime
import tempfile
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from helpers.holder_deployment import OTHER_ORG, REQUESTER_ORG, Deployment, make_deployment

from blindmatch.crypto.batch import BatchEngine
from blindmatch.holder.service import HolderDaemon
from blindmatch.transport.pki import organisation_of
from blindmatch.transport.status import reason_from_rpc_error
from blindmatch.v1 import holder_pb2 as pb
from blindmatch.v1 import holder_pb2_grpc as pb_grpc


@pytest.fixture(scope="module")
def holder(engine: BatchEngine) -> Iterator[tuple[Deployment, HolderDaemon]]:
    with tempfile.TemporaryDirectory() as tmp:
        dep = make_deployment(Path(tmp), records=20)
        with dep.running(engine) as daemon:
            yield dep, daemon


def _client_cert(pki: Path, subject: x509.Name, out: Path) -> Path:
    """A client certificate the holder's own CA signed for ``subject``."""
    ca_cert = x509.load_pem_x509_certificate((pki / "ca.crt").read_bytes())
    ca_key = serialization.load_pem_private_key((pki / "ca.key").read_bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(ca_cert.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    out.mkdir(parents=True)
    (out / "client.key").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    (out / "client.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return out


def _org(name: str) -> x509.NameAttribute:
    return x509.NameAttribute(NameOID.ORGANIZATION_NAME, name)


TWO_ORGANISATIONS = {
    "allowed first": x509.Name([_org(REQUESTER_ORG), _org(OTHER_ORG)]),
    "allowed second": x509.Name([_org(OTHER_ORG), _org(REQUESTER_ORG)]),
    "one multi-valued RDN": x509.Name([x509.RelativeDistinguishedName([_org(REQUESTER_ORG), _org(OTHER_ORG)])]),
}


@pytest.mark.parametrize("subject", TWO_ORGANISATIONS.values(), ids=TWO_ORGANISATIONS.keys())
def test_a_certificate_naming_two_organisations_is_no_allowed_organisation(
    holder: tuple[Deployment, HolderDaemon], tmp_path: Path, subject: x509.Name
) -> None:
    """Found live: the holder took the first O= of the subject, so the same CA-signed certificate
    was the allowed requester or not depending on the order of its attributes."""
    dep, daemon = holder
    certs = _client_cert(dep.pki, subject, tmp_path / "two-organisations")
    assert organisation_of((certs / "client.crt").read_bytes()) is None
    credentials = grpc.ssl_channel_credentials((dep.pki / "ca.crt").read_bytes(), (certs / "client.key").read_bytes(),
                                               (certs / "client.crt").read_bytes())
    with grpc.secure_channel(f"127.0.0.1:{daemon.port}", credentials) as ch, pytest.raises(grpc.RpcError) as err:
        pb_grpc.HolderStub(ch).GetInfo(pb.GetInfoRequest(), timeout=10)
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert reason_from_rpc_error(err.value) == "organisation_not_allowed"


def test_an_issuer_epoch_the_requester_made_up_is_quoted_short_and_escaped(holder: tuple[Deployment, HolderDaemon]) -> None:
    """Found live: DownloadIndex echoed a requester's 10,000-character issuer_epoch, line breaks included."""
    dep, daemon = holder
    made_up = '2026-12\n{"level": "error"}' + "x" * 10_000
    with dep.channel(daemon.port) as ch, pytest.raises(grpc.RpcError) as err:
        list(pb_grpc.HolderStub(ch).DownloadIndex(pb.DownloadIndexRequest(kind=pb.MODE_MEMBERSHIP, issuer_epoch=made_up),
                                                  timeout=10))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert reason_from_rpc_error(err.value) == "issuer_epoch_mismatch"
    details = err.value.details() or ""
    assert details.isprintable() and len(details) < 300 and "\\n" in details
