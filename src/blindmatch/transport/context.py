"""What a gRPC servicer may ask of its call: who the authenticated peer is, whether it went away."""

from __future__ import annotations

import threading

import grpc

from blindmatch.transport.pki import organisation_of

CANCEL_GRACE_SECONDS = 0.2  # how long a failing call may take to show it was cancelled (see call_cancelled)


def peer_organisation(context: grpc.ServicerContext) -> str | None:
    """O= of the verified client certificate (gRPC has checked it against the client CA)."""
    pems = context.auth_context().get("x509_pem_cert")
    return organisation_of(pems[0]) if pems else None


def call_cancelled(context: grpc.ServicerContext) -> bool:
    """Whether the peer cancelled or lost the call.

    gRPC can report the end of a cancelled call's request stream a moment before it marks
    the call cancelled, so a call that still looks active gets ``CANCEL_GRACE_SECONDS`` to
    terminate. Only a granted session's protocol errors pay this, and only on their way out.
    """
    if not context.is_active():
        return True
    terminated = threading.Event()
    return not context.add_callback(terminated.set) or terminated.wait(CANCEL_GRACE_SECONDS)
