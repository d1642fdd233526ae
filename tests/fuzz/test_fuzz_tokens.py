"""Eligibility tokens from outside: the token file, the token stage's spool, the manifest's issuer epoch.

* A token file comes from the issuer (or from whoever handled it since): random and
  mutated bytes must be refused as a whole (``TokenFileError`` naming the file), and even
  a file the pinned key signed, with hostile header values and row lines, must end in a
  ``TokenFileError`` or in per-row statuses, never in another exception.
* The spool is read back from the holder's disk after a crash: any bytes there must make
  the replay stop (the batch is asked for again), never crash or return wrong tokens; the
  blinds file likewise gives a batch only its own intact blinds, or new ones.
* The manifest's ``issuer_epoch`` must be a ``StoreError`` when malformed.
"""

from __future__ import annotations

import base64
import json
import tempfile
from datetime import date
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fuzz_support import assert_clear
from hypothesis import given
from hypothesis import strategies as st

from blindmatch.audit.keys import raw_public_key
from blindmatch.holder.store import StoreError, read_manifest
from blindmatch.holder.token_blinds import blinds_path
from blindmatch.holder.token_spool import TokenSpool, keys_digest, spool_path
from blindmatch.issuer.tokenfile import HEADER_FIELDS, MAGIC, SIGNATURE_CONTEXT, TokenFileError, read_token_file
from blindmatch.normalize import default_schema
from blindmatch.requester.inputs import JobInputError
from blindmatch.requester.token_inputs import load_tokens, prepare_token_elements
from blindmatch.vocabulary import Mode

pytestmark = pytest.mark.fuzz

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
PUBLIC = raw_public_key(KEY)
SCHEMA = default_schema()
GOOD_HEADER = {
    "issuer": "court.example", "epoch": "2026-12", "not-before": "2026-12-01T00:00:00Z",
    "expires": "2027-01-01T00:00:00Z", "oprf-key": "11" * 32, "signing-key": PUBLIC.hex(),
    "schema": SCHEMA.fingerprint.hex(), "tiers": str(len(SCHEMA.tier_names())), "rows": "1", "records": "00" * 32,
}
QUERIES = "name,address,order_date\nAlice Smith,\"100 Main St, Springfield, IL 62701\",2025-01-02\n"


def _signed(body: bytes) -> bytes:
    return body + b"signature " + base64.b64encode(KEY.sign(SIGNATURE_CONTEXT + body)) + b"\n"


def _body(header: dict[str, str], lines: list[str]) -> bytes:
    text = "\n".join([MAGIC, *(f"{name} {header[name]}" for name in HEADER_FIELDS), *lines]) + "\n"
    return text.encode("utf-8", "surrogateescape")


_text = st.text(alphabet=st.characters(codec="ascii"), max_size=80)
_token = st.one_of(st.just("-"), st.just("ab" * 64), st.text(alphabet="0123456789abcdefABCDEF-", max_size=140))


@given(data=st.binary(max_size=600))
def test_random_bytes_are_refused_naming_the_file(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "tokens.txt"
        path.write_bytes(data)
        with pytest.raises(TokenFileError) as refused:
            read_token_file(path, PUBLIC)
        assert_clear(refused.value, str(path))


@given(field=st.sampled_from(HEADER_FIELDS), value=_text,
       lines=st.lists(st.builds(lambda row, tokens: " ".join([row, *tokens]),
                                st.one_of(st.just("1"), st.just("2"), _text), st.lists(_token, max_size=8)),
                      max_size=4))
def test_signed_hostile_files_end_in_a_refusal_or_row_statuses(field: str, value: str, lines: list[str]) -> None:
    """Signed by the pinned key, so only the parser and the requester's checks stand between it and a session."""
    header = {**GOOD_HEADER, field: value, "rows": str(len(lines)) if field != "rows" else value}
    with tempfile.TemporaryDirectory() as tmp:
        path, queries = Path(tmp) / "tokens.txt", Path(tmp) / "queries.csv"
        path.write_bytes(_signed(_body(header, lines)))
        queries.write_text(QUERIES)
        (Path(tmp) / "issuer.key.pub").write_text(PUBLIC.hex() + "\n")
        try:
            tokens = load_tokens(path, Path(tmp) / "issuer.key.pub", SCHEMA)
            prepare_token_elements(queries, tokens, SCHEMA, Mode.MEMBERSHIP, date(2026, 12, 15))
        except (TokenFileError, JobInputError) as refused:
            assert_clear(refused)


@given(tail=st.binary(max_size=400), cut=st.integers(min_value=0, max_value=200))
def test_any_spool_bytes_stop_the_replay_cleanly(tail: bytes, cut: int) -> None:
    keys = [b"key %d" % i for i in range(3)]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        spool = TokenSpool(root, "2026-12", bytes(32), 3)
        spool.record(keys, [bytes([i]) * 64 for i in range(3)])
        spool.close()
        data = spool_path(root, "2026-12").read_bytes()
        spool_path(root, "2026-12").write_bytes(data[: len(data) - cut] + tail)
        reopened = TokenSpool(root, "2026-12", bytes(32), 3)
        replayed = reopened.replay(keys)
        assert replayed is None or replayed == [bytes([i]) * 64 for i in range(3)]
        assert reopened.replay(keys) is None  # one batch only was ever recorded
        reopened.close()
    assert keys_digest(keys) != keys_digest(keys[:2])


@given(value=st.one_of(st.none(), st.integers(), _text, st.lists(_text, max_size=2),
                       st.dictionaries(st.sampled_from(["name", "not_before", "expires", "oprf_key"]), _text)))
def test_a_malformed_manifest_issuer_epoch_is_a_store_error(value: object) -> None:
    doc = {"format": 2, "key_id": "00" * 32, "schema": {"fingerprint": "00" * 32, "name": "s", "version": 1},
           "records": 0, "built_at": "2026-12-01T00:00:00Z", "indexes": [], "issuer_epoch": value}
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "index.json").write_text(json.dumps(doc))
        try:
            manifest = read_manifest(Path(tmp))
        except StoreError as refused:
            assert_clear(refused, "index.json")
        else:
            assert manifest.issuer_epoch is None or manifest.issuer_epoch.name


@given(tail=st.binary(max_size=300), cut=st.integers(min_value=0, max_value=140))
def test_any_blinds_bytes_give_kept_or_fresh_blinds(tail: bytes, cut: int) -> None:
    """The blinds file after a crash: an intact record is used for its own batch only, anything
    damaged is cut, and a batch without an intact record gets new blinds (and is counted anew)."""
    keys, other = [b"key %d" % i for i in range(2)], [b"other %d" % i for i in range(2)]
    kept, fresh = bytes(range(64)), bytes(range(64, 128))
    with tempfile.TemporaryDirectory() as tmp:
        spool = TokenSpool(Path(tmp), "2026-12", bytes(32), 2)
        assert spool.blinds_for(keys, lambda: kept) == kept
        spool.close()
        path = blinds_path(Path(tmp), "2026-12")
        data = path.read_bytes()
        path.write_bytes(data[: len(data) - cut] + tail)
        spool = TokenSpool(Path(tmp), "2026-12", bytes(32), 2)
        assert spool.blinds_for(keys, lambda: fresh) == (kept if cut == 0 else fresh)
        assert spool.blinds_for(other, lambda: fresh) == fresh
        assert spool.blinds_for(keys, lambda: bytes(64)) in (kept, fresh)  # kept now either way, so reused
        spool.close()
