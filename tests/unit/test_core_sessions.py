"""HolderSession and RequesterSession: a full run, every rejection path, and what each side sees."""

from __future__ import annotations

import hashlib
import os
from dataclasses import replace

import pytest
from helpers.core_setup import built_holder

from blindmatch.core.errors import ProtocolError
from blindmatch.core.holder import HolderSession, HolderState, unsigned_close
from blindmatch.core.keys import HolderKey
from blindmatch.core.messages import Abort, Accept, BlindedBatch, Close, EvaluatedBatch, Hello
from blindmatch.core.pacing import run_local
from blindmatch.core.requester import RequesterSession, RequesterState
from blindmatch.crypto import group, poprf
from blindmatch.crypto.group import IDENTITY
from blindmatch.crypto.oprf import public_key
from blindmatch.vocabulary import Mode, Reason

FINGERPRINT = hashlib.sha256(b"schema").digest()
HOLDER_KEYS = [f"holder person {i}".encode() for i in range(600)]
ORG = "Example County"


@pytest.fixture(scope="module")
def setup(engine):  # type: ignore[no-untyped-def]
    _key, config, indexes = built_holder(engine, HOLDER_KEYS, FINGERPRINT, ORG, max_batch=64, max_session_elements=1000)
    return config, indexes


def _queries() -> tuple[list[bytes], list[bool]]:
    keys = [HOLDER_KEYS[i] if i % 3 == 0 else f"stranger {i}".encode() for i in range(200)]
    return keys, [i % 3 == 0 for i in range(200)]


def _sessions(setup, engine, mode: Mode, keys: list[bytes] | None = None, batch: int = 64):  # type: ignore[no-untyped-def]
    config, indexes = setup
    keys = keys if keys is not None else _queries()[0]
    return (HolderSession(config, engine, unsigned_close, ORG),
            RequesterSession(keys, mode, indexes[mode], os.urandom(16), batch, engine, organisation=ORG,
                             public_key=public_key(config.sk)))


def test_membership_run_finds_exactly_the_members(setup, engine) -> None:  # type: ignore[no-untyped-def]
    holder, requester = _sessions(setup, engine, Mode.MEMBERSHIP)
    run_local(holder, requester)
    assert requester.state is RequesterState.CLOSED and holder.state is HolderState.CLOSED
    assert requester.matched.tolist() == _queries()[1]
    assert holder.transcript_hash == requester.transcript_hash


def test_cardinality_run_counts_and_reveals_no_per_record_result(setup, engine) -> None:  # type: ignore[no-untyped-def]
    keys, truth = _queries()
    holder, requester = _sessions(setup, engine, Mode.CARDINALITY, keys)
    wire = run_local(holder, requester)
    assert requester.match_count == sum(truth)
    assert not requester.matched.any()  # no per-record array is ever filled in this mode
    evaluated = [m for m in wire if isinstance(m, EvaluatedBatch)]
    # Nothing comes back until every blinded batch is in, so no batch-level count leaks either.
    first_evaluated = wire.index(evaluated[0])
    assert all(isinstance(m, BlindedBatch) for m in wire[2:first_evaluated])
    assert len([m for m in wire[:first_evaluated] if isinstance(m, BlindedBatch)]) == -(-len(keys) // 64)
    # The holder permutes: the evaluations are not in the order of the blinded elements.
    config, _ = setup
    blinded = b"".join(m.elements for m in wire if isinstance(m, BlindedBatch))
    in_order = engine.blind_evaluate(group.invert(poprf.tweaked_secret(config.sk, holder.info)), blinded)
    returned = b"".join(m.elements for m in evaluated)
    assert returned != in_order
    assert sorted(returned[i : i + 32] for i in range(0, len(returned), 32)) == sorted(in_order[i : i + 32] for i in range(0, len(in_order), 32))


def test_cardinality_uses_one_blind_for_the_session(setup, engine) -> None:  # type: ignore[no-untyped-def]
    keys = [b"same"] * 3
    _, requester = _sessions(setup, engine, Mode.CARDINALITY, keys)
    requester.hello()
    assert len({requester._blinded[i : i + 32] for i in range(0, 96, 32)}) == 1
    _, membership = _sessions(setup, engine, Mode.MEMBERSHIP, keys)
    assert len({membership._blinded[i : i + 32] for i in range(0, 96, 32)}) == 3


@pytest.mark.parametrize("mode", list(Mode))
def test_holder_receives_no_plaintext_or_unkeyed_hash(setup, engine, mode: Mode) -> None:  # type: ignore[no-untyped-def]
    """In both modes (the cardinality proof included) the requester sends only the Hello, blinded batches and Close."""
    keys = [b"MARKER-" + os.urandom(8).hex().encode() for _ in range(50)]
    holder, requester = _sessions(setup, engine, mode, keys)
    wire = run_local(holder, requester)
    to_holder = [m for m in wire if isinstance(m, (Hello, BlindedBatch, Close))]
    assert len(to_holder) == 2 + -(-len(keys) // 64) and requester.closed
    seen = b"".join(m.canonical() for m in wire if isinstance(m, (Hello, BlindedBatch)))
    seen += b"".join(m.transcript_hash for m in wire if isinstance(m, Close))
    for k in keys:
        for needle in (k, hashlib.sha256(k).digest(), hashlib.sha512(k).digest()[:16]):
            assert needle not in seen
    assert b"MARKER" not in seen


def _open(setup, engine, mode: Mode = Mode.MEMBERSHIP):  # type: ignore[no-untyped-def]
    holder, requester = _sessions(setup, engine, mode)
    holder.receive(requester.hello())
    requester.receive(holder.accept())
    return holder, requester


def test_invalid_element_in_batch_rejected(setup, engine) -> None:  # type: ignore[no-untyped-def]
    config, indexes = setup
    requester = RequesterSession([b"a"], Mode.MEMBERSHIP, indexes[Mode.MEMBERSHIP], os.urandom(16), 64, engine,
                                 organisation=ORG, public_key=public_key(config.sk))
    genuine_hello = requester.hello()
    generator_high_bit = bytes.fromhex("e2f2ae0a6abc4e71a884a961c500515f58e30b6aa582dd8db6a65945e08d2df6")
    for bad in (IDENTITY, b"\xff" * 32, b"\x01" + bytes(31), generator_high_bit):
        holder = HolderSession(config, engine, unsigned_close, ORG)
        holder.receive(replace(genuine_hello, batch_digests=(hashlib.sha256(bad).digest(),)))
        holder.accept()
        with pytest.raises(ProtocolError) as err:
            holder.receive(BlindedBatch(0, bad))
        assert err.value.code == "invalid_element"
        assert holder.state is HolderState.FAILED
        assert holder.evaluated_count == 0


def test_batch_not_matching_commitment_is_not_evaluated(setup, engine) -> None:  # type: ignore[no-untyped-def]
    holder, requester = _open(setup, engine)
    genuine = requester.next_batch()
    assert genuine is not None
    tampered = BlindedBatch(0, genuine.elements[32:] + genuine.elements[:32])
    with pytest.raises(ProtocolError) as err:
        holder.receive(tampered)
    assert err.value.code == "commitment_mismatch" and holder.evaluated_count == 0


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"protocol_version": 2}, "bad_version"),
        ({"key_id": b"\x00" * 32}, "key_mismatch"),
        ({"schema_fingerprint": b"\x00" * 32}, "schema_mismatch"),
        ({"index_digest": b"\x00" * 32}, "index_mismatch"),
        ({"element_count": 5000}, "limit_exceeded"),
        ({"batch_size": 65}, "limit_exceeded"),
        ({"session_id": b"short"}, "bad_request"),
        ({"batch_digests": ()}, "bad_request"),
    ],
)
def test_bad_hello_rejected(setup, engine, change, code) -> None:  # type: ignore[no-untyped-def]
    holder, requester = _sessions(setup, engine, Mode.MEMBERSHIP)
    with pytest.raises(ProtocolError) as err:
        holder.receive(replace(requester.hello(), **change))
    assert err.value.code == code


def test_a_key_of_an_ended_epoch_is_refused_after_version_and_before_the_key_check(setup, engine) -> None:  # type: ignore[no-untyped-def]
    config, _indexes = setup
    old = b"\x07" * 32
    ended = replace(config, ended_keys={old: "epoch 1 is over: follow the rotation statement"})
    holder = HolderSession(ended, engine, unsigned_close, ORG)
    hello = _sessions(setup, engine, Mode.MEMBERSHIP)[1].hello()
    with pytest.raises(ProtocolError, match="follow the rotation statement") as err:
        holder.receive(replace(hello, key_id=old))
    assert err.value.code == "epoch_ended"
    with pytest.raises(ProtocolError) as err:
        HolderSession(ended, engine, unsigned_close, ORG).receive(replace(hello, key_id=old, protocol_version=2))
    assert err.value.code == "bad_version"


def test_schema_mismatch_message_is_clear(setup, engine) -> None:  # type: ignore[no-untyped-def]
    holder, requester = _sessions(setup, engine, Mode.MEMBERSHIP)
    with pytest.raises(ProtocolError, match="same schema"):
        holder.receive(replace(requester.hello(), schema_fingerprint=b"\x01" * 32))


def test_wrong_message_order_rejected(setup, engine) -> None:  # type: ignore[no-untyped-def]
    holder, requester = _sessions(setup, engine, Mode.MEMBERSHIP)
    with pytest.raises(ProtocolError) as err:
        holder.receive(BlindedBatch(0, b""))
    assert err.value.code == "unexpected_message"
    holder, requester = _sessions(setup, engine, Mode.MEMBERSHIP)
    holder.receive(requester.hello())
    with pytest.raises(ProtocolError):  # batches before the policy decision
        holder.receive(BlindedBatch(0, b""))
    with pytest.raises(ProtocolError):  # requester cannot send before Accept
        requester.next_batch()
    holder, requester = _open(setup, engine)
    requester.next_batch()
    second = requester.next_batch()
    assert second is not None
    with pytest.raises(ProtocolError):  # out of sequence
        holder.receive(second)
    holder, requester = _open(setup, engine)
    with pytest.raises(ProtocolError):  # close before all batches
        holder.receive(Close(requester.session_id, requester.transcript_hash))
    with pytest.raises(ProtocolError):  # an evaluation for a batch never sent
        requester.receive(EvaluatedBatch(0, b"\x00" * 32 * 64))
    _, requester = _sessions(setup, engine, Mode.MEMBERSHIP)
    with pytest.raises(ProtocolError):
        requester.receive(Accept(requester.session_id, 64))


def test_refused_session_evaluates_nothing(setup, engine) -> None:  # type: ignore[no-untyped-def]
    holder, requester = _sessions(setup, engine, Mode.MEMBERSHIP)
    holder.receive(requester.hello())
    abort = holder.refuse(Reason.OVER_BUDGET, "over_budget: no")
    assert abort.code == "refused" and holder.state is HolderState.FAILED
    with pytest.raises(ProtocolError):
        holder.receive(BlindedBatch(0, b""))
    with pytest.raises(ProtocolError) as err:
        requester.receive(abort)
    assert err.value.code == "refused"


def test_transcript_mismatch_detected(setup, engine) -> None:  # type: ignore[no-untyped-def]
    holder, requester = _sessions(setup, engine, Mode.MEMBERSHIP, [b"x"])
    holder.receive(requester.hello())
    requester.receive(holder.accept())
    batch = requester.next_batch()
    assert batch is not None
    (evaluated,) = holder.receive(batch)
    (close,) = requester.receive(evaluated)
    with pytest.raises(ProtocolError) as err:
        holder.receive(replace(close, transcript_hash=b"\x00" * 32))
    assert err.value.code == "transcript_mismatch"


def test_empty_session_closes(setup, engine) -> None:  # type: ignore[no-untyped-def]
    holder, requester = _sessions(setup, engine, Mode.MEMBERSHIP, [])
    run_local(holder, requester)
    assert requester.state is RequesterState.CLOSED and holder.evaluated_count == 0


def _open_membership(setup, engine, holder_config=None):  # type: ignore[no-untyped-def]
    """A membership session up to its first evaluated batch (from a holder with ``holder_config``)."""
    config, indexes = setup
    holder = HolderSession(holder_config or config, engine, unsigned_close, ORG)
    requester = RequesterSession(_queries()[0], Mode.MEMBERSHIP, indexes[Mode.MEMBERSHIP], os.urandom(16), 64, engine,
                                 organisation=ORG, public_key=public_key(config.sk))
    holder.receive(requester.hello())
    requester.receive(holder.accept())
    (evaluated,) = holder.receive(requester.next_batch()).messages
    assert isinstance(evaluated, EvaluatedBatch)
    return holder, requester, evaluated


def test_every_membership_batch_carries_a_proof_the_requester_checks(setup, engine) -> None:  # type: ignore[no-untyped-def]
    _holder, requester, evaluated = _open_membership(setup, engine)
    assert len(evaluated.proof) == 64
    tampered = replace(evaluated, proof=evaluated.proof[:32] + bytes(32))
    with pytest.raises(ProtocolError) as err:
        requester.receive(tampered)
    assert err.value.code == Reason.PROOF_INVALID
    assert "evaluated batch 0" in err.value.message
    assert not requester.matched.any()  # nothing of the batch was used
    assert requester.state is RequesterState.FAILED


def test_a_holder_evaluating_with_another_key_is_caught_by_the_proof(setup, engine) -> None:  # type: ignore[no-untyped-def]
    """Selective failure: a batch evaluated (and proven) under another key does not verify."""
    config, _ = setup
    other = HolderKey.generate()
    _holder, requester, evaluated = _open_membership(setup, engine, replace(config, sk=other.sk))
    with pytest.raises(ProtocolError) as err:
        requester.receive(evaluated)
    assert err.value.code == Reason.PROOF_INVALID


def test_a_swapped_element_fails_the_batch_proof(setup, engine) -> None:  # type: ignore[no-untyped-def]
    _holder, requester, evaluated = _open_membership(setup, engine)
    elements = evaluated.elements[32:64] + evaluated.elements[:32] + evaluated.elements[64:]
    with pytest.raises(ProtocolError) as err:
        requester.receive(replace(evaluated, elements=elements))
    assert err.value.code == Reason.PROOF_INVALID


def test_an_index_of_another_key_than_the_pinned_one_is_refused(setup, engine) -> None:  # type: ignore[no-untyped-def]
    _config, indexes = setup
    with pytest.raises(ProtocolError) as err:
        RequesterSession([b"a"], Mode.MEMBERSHIP, indexes[Mode.MEMBERSHIP], os.urandom(16), 64, engine,
                         organisation=ORG, public_key=public_key(HolderKey.generate().sk))
    assert err.value.code == Reason.KEY_MISMATCH


def test_another_organisations_session_matches_nothing_in_this_index(setup, engine) -> None:  # type: ignore[no-untyped-def]
    config, indexes = setup
    keys = [HOLDER_KEYS[i] for i in range(50)]
    holder = HolderSession(config, engine, unsigned_close, "Other County")
    requester = RequesterSession(keys, Mode.MEMBERSHIP, indexes[Mode.MEMBERSHIP], os.urandom(16), 64, engine,
                                 organisation="Other County", public_key=public_key(config.sk))
    run_local(holder, requester)
    assert requester.closed and requester.match_count == 0


def test_the_requesters_abort_fails_the_holder_session_with_its_reason(setup, engine) -> None:  # type: ignore[no-untyped-def]
    holder, _requester, _evaluated = _open_membership(setup, engine)
    with pytest.raises(ProtocolError) as err:
        holder.receive(Abort(Reason.PROOF_INVALID, "evaluated batch 0: proof does not verify"))
    assert err.value.code == Reason.PROOF_INVALID
    assert holder.state is HolderState.FAILED


def test_blinding_ahead_gives_the_same_session(setup, engine) -> None:  # type: ignore[no-untyped-def]
    """Keys blinded before the index exists (blind_ahead) give the same batches, commitment and results."""
    from blindmatch.core.requester import blind_ahead

    config, indexes = setup
    keys, expected = _queries()
    for mode in (Mode.MEMBERSHIP, Mode.CARDINALITY):
        prepared = blind_ahead(keys, mode, engine)
        ahead = RequesterSession(keys, mode, indexes[mode], os.urandom(16), 64, engine, organisation=ORG,
                                 public_key=public_key(config.sk), prepared=prepared)
        inline = RequesterSession(keys, mode, indexes[mode], os.urandom(16), 64, engine, organisation=ORG,
                                  public_key=public_key(config.sk), blinds=prepared.blinds)
        assert ahead.blinded_commitment == inline.blinded_commitment
        run_local(HolderSession(config, engine, unsigned_close, ORG), ahead)
        assert ahead.closed and ahead.match_count == sum(expected)
        if mode is Mode.MEMBERSHIP:
            assert ahead.matched.tolist() == expected


def test_a_prepared_blinding_must_fit_the_session(setup, engine) -> None:  # type: ignore[no-untyped-def]
    from blindmatch.core.requester import blind_ahead

    config, indexes = setup
    keys, _ = _queries()
    prepared = blind_ahead(keys, Mode.MEMBERSHIP, engine)
    common = {"organisation": ORG, "public_key": public_key(config.sk)}
    index = indexes[Mode.MEMBERSHIP]
    with pytest.raises(ValueError, match="other keys or another mode"):
        RequesterSession(keys[1:], Mode.MEMBERSHIP, index, os.urandom(16), 64, engine, prepared=prepared, **common)
    with pytest.raises(ValueError, match="other keys or another mode"):
        RequesterSession(keys, Mode.MEMBERSHIP, index, os.urandom(16), 64, engine, prepared=prepared,
                         blinds=prepared.blinds, **common)
    with pytest.raises(ValueError, match="other keys or another mode"):
        RequesterSession(keys, Mode.CARDINALITY, indexes[Mode.CARDINALITY], os.urandom(16), 64, engine,
                         prepared=prepared, **common)
    with pytest.raises(ValueError, match="wrong number of blinds"):
        blind_ahead(keys, Mode.MEMBERSHIP, engine, blinds=prepared.blinds[:32])
