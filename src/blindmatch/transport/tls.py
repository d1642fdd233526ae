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

from pathlib import Path

import grpc

from blindmatch.keyfile import read_private

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


def channel_credentials(ca_cert: Path, key: Path, cert: Path, error: type[Exception]) -> grpc.ChannelCredentials:
    """The client side: trust ``ca_cert``, present ``cert`` with its ``key``."""
    return grpc.ssl_channel_credentials(
        root_certificates=_read_public(ca_cert, "CA certificate", error),
        private_key=read_private(Path(key), error, "TLS key"),
        certificate_chain=_read_public(cert, "TLS certificate", error),
    )
