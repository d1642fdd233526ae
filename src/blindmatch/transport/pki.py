"""A small certificate authority for trying blindmatch out and for tests.

mTLS is how the holder knows which organisation is calling: the client certificate's
subject O= attribute is the peer identity used by policy and audit. Real deployments
use their own PKI and point the TOML files at those files; this module makes a
self-contained set (ECDSA P-256, which every TLS stack in gRPC supports) so a pilot
needs nothing else.

Layout of ``DIR`` after :func:`init_pki`::

    ca.crt  ca.key
    <org-slug>/client.crt client.key server.crt server.key
"""

from __future__ import annotations

import datetime
import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from blindmatch.keyfile import create_new_file, read_private
from blindmatch.vocabulary import BlindmatchError

CA_VALIDITY = datetime.timedelta(days=5 * 365)
LEAF_VALIDITY = datetime.timedelta(days=825)
BACKDATE = datetime.timedelta(minutes=5)  # tolerate small clock differences between machines


class PkiError(BlindmatchError):
    """The PKI directory cannot be created or read as asked."""


@dataclass(frozen=True)
class OrganisationFiles:
    organisation: str
    directory: Path

    @property
    def client_cert(self) -> Path:
        return self.directory / "client.crt"

    @property
    def client_key(self) -> Path:
        return self.directory / "client.key"

    @property
    def server_cert(self) -> Path:
        return self.directory / "server.crt"

    @property
    def server_key(self) -> Path:
        return self.directory / "server.key"


def slug(organisation: str) -> str:
    """A directory name for an organisation: lower-case ASCII words joined by '-'."""
    text = re.sub(r"[^a-z0-9]+", "-", organisation.lower()).strip("-")
    if not text:
        raise PkiError(f"organisation name {organisation!r} has no letters or digits")
    return text


def organisation_of(cert_pem: bytes) -> str | None:
    """The subject's O= attribute of a PEM certificate (None unless it has exactly one).

    A subject with two O= names two organisations; taking the first would make the peer's
    identity depend on their order (or, in one multi-valued RDN, on their DER sorting),
    so such a certificate identifies no organisation and is refused as any unknown one."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    values = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    return str(values[0].value) if len(values) == 1 else None


def _write_private(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    data = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    create_new_file(path, data, 0o600)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _name(organisation: str, common_name: str) -> x509.Name:
    return x509.Name(
        [x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation), x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    )


def _subject_alt_names(hosts: list[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def _create_ca(directory: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    name = _name("blindmatch pilot CA", f"blindmatch pilot CA {directory.resolve().name}")
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_private(directory / "ca.key", key)
    _write_cert(directory / "ca.crt", cert)
    return cert, key


def _load_ca(directory: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert = x509.load_pem_x509_certificate((directory / "ca.crt").read_bytes())
    # The CA key can issue any organisation's certificate: it is a secret key like the others.
    key = serialization.load_pem_private_key(read_private(directory / "ca.key", PkiError, "CA key"), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise PkiError(f"{directory / 'ca.key'} is not an ECDSA key made by 'blindmatch pki init'")
    return cert, key


def _leaf(
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    organisation: str,
    common_name: str,
    usage: x509.ObjectIdentifier,
    hosts: list[str],
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(organisation, common_name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + LEAF_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
    )
    if hosts:
        builder = builder.add_extension(x509.SubjectAlternativeName(_subject_alt_names(hosts)), critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


def init_pki(directory: Path, organisations: list[str], hosts: list[str]) -> list[OrganisationFiles]:
    """Create (or extend) the CA in ``directory`` and a client and server certificate per organisation.

    An existing CA is reused, so organisations can be added later; an organisation
    whose directory already exists is an error rather than silently re-keyed.
    """
    directory = Path(directory)
    if not organisations:
        raise PkiError("name at least one organisation")
    if not hosts:
        raise PkiError("the server certificates need at least one host name or address")
    targets = [OrganisationFiles(org, directory / slug(org)) for org in organisations]
    seen: dict[Path, str] = {}
    for target in targets:
        if target.directory in seen:
            raise PkiError(f"organisations {seen[target.directory]!r} and {target.organisation!r} map to the same directory")
        seen[target.directory] = target.organisation
        if target.directory.exists():
            raise PkiError(f"{target.directory} already exists; remove it to re-issue {target.organisation!r}")
    directory.mkdir(parents=True, exist_ok=True)
    has_cert, has_key = (directory / "ca.crt").exists(), (directory / "ca.key").exists()
    if has_cert != has_key:
        raise PkiError(f"{directory} holds only one of ca.crt and ca.key")
    ca_cert, ca_key = _load_ca(directory) if has_cert else _create_ca(directory)
    for target in targets:
        target.directory.mkdir(mode=0o700)
        for role, usage, leaf_hosts in (
            ("client", ExtendedKeyUsageOID.CLIENT_AUTH, []),
            ("server", ExtendedKeyUsageOID.SERVER_AUTH, hosts),
        ):
            cert, key = _leaf(ca_cert, ca_key, target.organisation, f"{target.organisation} {role}", usage, leaf_hosts)
            _write_private(target.directory / f"{role}.key", key)
            _write_cert(target.directory / f"{role}.crt", cert)
    return targets
