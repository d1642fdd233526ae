"""A gRPC unary call over a TLS 1.2 connection, which grpcio itself cannot make.

grpcio offers no way to cap a client's TLS version, so this speaks HTTP/2 (``h2``) over
Python's ``ssl`` with ``maximum_version = TLSv1_2`` and returns the call's trailers.
"""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

import h2.config
import h2.connection
import h2.events


def unary_over_tls12(port: int, method: str, body: bytes, ca: Path, cert: Path, key: Path,
                     timeout: float = 10.0) -> dict[str, str]:
    """The response headers and trailers of ``method`` (e.g. ``/pkg.Service/Method``) as one dict."""
    context = ssl.create_default_context(cafile=str(ca))
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(cert), str(key))
    context.set_alpn_protocols(["h2"])
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    with context.wrap_socket(raw, server_hostname="localhost") as tls:
        assert tls.version() == "TLSv1.2", tls.version()
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        conn.initiate_connection()
        stream = conn.get_next_available_stream_id()
        conn.send_headers(stream, [
            (":method", "POST"), (":scheme", "https"), (":authority", f"localhost:{port}"), (":path", method),
            ("content-type", "application/grpc"), ("te", "trailers"),
        ])
        conn.send_data(stream, b"\x00" + len(body).to_bytes(4, "big") + body, end_stream=True)
        tls.sendall(conn.data_to_send())
        headers: dict[str, str] = {}
        while True:
            data = tls.recv(65536)
            if not data:
                return headers
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.ResponseReceived | h2.events.TrailersReceived):
                    headers.update({str(k): str(v) for k, v in event.headers})
                if isinstance(event, h2.events.StreamEnded | h2.events.StreamReset):
                    return headers
            tls.sendall(conn.data_to_send())
