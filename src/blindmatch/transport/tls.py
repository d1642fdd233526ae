"""Mutual-TLS credentials of the daemons; the private key is read as every secret file is.

The private key file must be 0600 (``keyfile.read_private``); certificates and CA files
are public. Errors name the file and are raised as the caller's error type, so a holder
reports a ``StoreError`` and a requester a ``HolderError``.

TLS 1.3 only: grpcio (1.85) offers no way to set a minimum TLS version on a server
(``ssl_server_credentials`` has no such argument, and no channel argument or environment
variable sets it; grpc/grpc#43080 proposes one). So every call's negotiated version is
checked instead (:func:`tls_problem`, applied to every method by ``transport.guard``):
a TLS 1.2 connection completes its handshake, but every call on it is refused.
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from blindmatch.keyfile import read_private
from blindmatch.tomlfile import StrictFields
from blindmatch.transport.pki import organisation_of

REQUIRED_TLS_VERSION = b"TLSv1.3"


def tls_problem(auth: dict[str, list[bytes]]) -> str | None:
    """Why a call's connection is unacceptable (not TLS 1.3), or None.

    ``auth`` is the call's ``auth_context()``; gRPC fills ``ssl_tls_version`` from the handshake.
    """
    versions = auth.get("ssl_tls_version") or [b"unknown"]
    if versions[0] != REQUIRED_TLS_VERSION:
        return f"the connection uses {versions[0].decode(errors='replace')}; this service requires TLS 1.3"
    return None


def _read_public(path: Path, what: str, error: type[Exception]) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {exc.strerror}") from None


def server_credentials(key: Path, cert: Path, client_ca: Path, error: type[Exception]) -> grpc.ServerCredentials:
    """mTLS: clients must present a certificate issued by ``client_ca``."""
    return grpc.ssl_server_credentials(
        [(read_private(Path(key), error, "TLS key"), _read_public(cert, "TLS certificate", error))],
        root_certificates=_read_public(client_ca, "client CA", error),
        require_client_auth=True,
    )


@dataclass(frozen=True)
class ServerTlsFiles:
    """A daemon's mutual-TLS files (``[ROLE.tls]``): its certificate, its key (mode 0600)
    and the CA its clients' certificates must be issued by."""

    cert: Path
    key: Path
    client_ca: Path

    @classmethod
    def from_table(cls, fields: StrictFields, base: Path, where: str, value: Any) -> ServerTlsFiles:
        """``[ROLE.tls]`` of a config file, its paths relative to ``base`` (the file's directory)."""
        table = fields.table(where, value)
        fields.check_keys(where, table, {"cert", "key", "client_ca"})
        return cls(*(base / fields.text(where, table, key) for key in ("cert", "key", "client_ca")))

    def credentials(self, error: type[Exception]) -> grpc.ServerCredentials:
        return server_credentials(self.key, self.cert, self.client_ca, error)


def channel_credentials(ca_cert: Path, key: Path, cert: Path, error: type[Exception]) -> grpc.ChannelCredentials:
    """The client side: trust ``ca_cert``, present ``cert`` with its ``key``."""
    return grpc.ssl_channel_credentials(
        root_certificates=_read_public(ca_cert, "CA certificate", error),
        private_key=read_private(Path(key), error, "TLS key"),
        certificate_chain=_read_public(cert, "TLS certificate", error),
    )


def server_organisation(
    address: str, ca_cert: Path, key: Path, cert: Path, server_name: str | None, error: type[Exception],
    timeout: float = 10.0,
) -> str | None:
    """The O= of the certificate the server at ``address`` presents, after full verification.

    gRPC Python gives a client no access to the server's certificate, so this opens one
    TLS connection of its own (same CA, same client certificate, same name check as the
    channel), verifies the chain and the host name, reads the organisation and closes.
    The caller compares it with the pinned organisation before opening the gRPC channel.
    """
    read_private(Path(key), error, "TLS key")  # the same 0600 check as the channel's
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit():
        raise error(f"holder address {address!r} is not HOST:PORT")
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca_cert))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["h2"])
    context.load_cert_chain(str(cert), str(key))
    try:
        with (
            socket.create_connection((host, int(port)), timeout=timeout) as raw,
            context.wrap_socket(raw, server_hostname=server_name or host) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
    except ssl.SSLCertVerificationError as exc:
        raise error(f"the holder at {address} presents a certificate that does not verify: {exc.verify_message}") from None
    except (OSError, ssl.SSLError) as exc:
        raise ConnectionError(f"cannot reach the holder at {address} to check its certificate: {exc}") from None
    if der is None:
        raise error(f"the holder at {address} presented no certificate")
    return organisation_of(ssl.DER_cert_to_PEM_cert(der).encode())
