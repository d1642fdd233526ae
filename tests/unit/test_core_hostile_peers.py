"""The session cores against a peer that runs its own modified code (found attacking the live daemons by hand)."""

from __future__ import annotations

import hashlib
import os

import grpc
import pytest
from helpers.core_setup import built_holder

from blindmatch.core.errors import PEER_TEXT_LIMIT, ProtocolError, peer_text
from blindmatch.core.holder import HolderConfig, HolderSession, unsigned_close
from blindmatch.core.index import EncryptedIndex
from blindmatch.core.messages import Abort
from blindmatch.core.requester import RequesterSession
from blindmatch.crypto.batch import BatchEngine
from blindmatch.crypto.oprf import public_key
from blindmatch.requester.holder_client import translate
from blindmatch.vocabulary import Mode, Reason

FINGERPRINT = hashlib.sha256(b"schema").digest()
ORG = "Example County"
HOLDER_KEYS = [f"holder person {i}".encode() for i in range(40)]


@pytest.fixture(scope="module")
def setup(engine: BatchEngine) -> tuple[HolderConfig, dict[Mode, EncryptedIndex]]:
    _key, config, indexes = built_holder(engine, HOLDER_KEYS, FINGERPRINT, ORG, max_batch=8)
    return config, indexes


FORGED_LINE = 'boom\n{"level": "error", "message": "audit log deleted"}\x1b[31m\u202e'


def test_an_abort_message_cannot_forge_a_holder_log_line(setup, engine) -> None:  # type: ignore[no-untyped-def]
    """The requester's Abort text is quoted in the holder's log and status details: escaped, never raw."""
    config, indexes = setup
    holder = HolderSession(config, engine, unsigned_close, ORG)
    requester = RequesterSession([b"a"], Mode.MEMBERSHIP, indexes[Mode.MEMBERSHIP], os.urandom(16), 8, engine,
                                 organisation=ORG, public_key=public_key(config.sk))
    holder.receive(requester.hello())
    holder.accept()
    with pytest.raises(ProtocolError) as err:
        holder.receive(Abort(Reason.PROOF_INVALID, FORGED_LINE))
    assert err.value.code == Reason.PROOF_INVALID
    assert str(err.value).isprintable()
    assert "\\n" in err.value.message and "\\x1b" in err.value.message and "\\u202e" in err.value.message


def test_a_holder_abort_message_is_escaped_for_the_requester(setup, engine) -> None:  # type: ignore[no-untyped-def]
    config, indexes = setup
    requester = RequesterSession([b"a"], Mode.MEMBERSHIP, indexes[Mode.MEMBERSHIP], os.urandom(16), 8, engine,
                                 organisation=ORG, public_key=public_key(config.sk))
    requester.hello()
    with pytest.raises(ProtocolError) as err:
        requester.receive(Abort(Reason.REFUSED, FORGED_LINE * 10))
    assert str(err.value).isprintable() and len(err.value.message) < 300


def test_peer_text_keeps_printable_text_as_it_is() -> None:
    assert peer_text("evaluated batch 0: proof does not verify") == "evaluated batch 0: proof does not verify"
    assert peer_text("é" * 500) == "é" * PEER_TEXT_LIMIT


def test_a_holders_status_details_are_escaped_in_the_requesters_error() -> None:
    """A misbehaving holder's gRPC details reach the requester's log, job store and terminal."""

    class Failed(grpc.RpcError):
        def code(self) -> grpc.StatusCode:
            return grpc.StatusCode.INVALID_ARGUMENT

        def details(self) -> str:
            return FORGED_LINE

        def trailing_metadata(self) -> tuple[tuple[str, str], ...]:
            return (("blindmatch-reason", "bad_request"),)

    error = translate(Failed(), "Match")
    assert str(error).isprintable() and "\\x1b" in str(error)
