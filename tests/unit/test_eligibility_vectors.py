"""protocol/test-vectors/eligibility.json is what the implementation produces, and checks by itself."""

from __future__ import annotations

import json
from pathlib import Path

from helpers.vector_files import VECTOR_DIR, load_generator

from blindmatch.crypto import poprf, voprf
from blindmatch.issuer.tokenfile import read_token_file

generate = load_generator("generate_eligibility")
DATA = json.loads((VECTOR_DIR / "eligibility.json").read_text())


def test_vectors_are_current() -> None:
    assert (VECTOR_DIR / "eligibility.json").read_text() == generate.render_json(generate.eligibility_vectors())


def test_issuer_key_tokens_and_composed_entries() -> None:
    issuer = DATA["issuer"]
    sk, pk = voprf.derive_key_pair(bytes.fromhex(issuer["seed"]), issuer["info"].encode())
    assert (sk.hex(), pk.hex()) == (issuer["skI"], issuer["pkI"])
    holder_sk = bytes.fromhex(DATA["holder"]["skS"])
    for tier in DATA["tiers"]:
        token = voprf.evaluate(sk, bytes.fromhex(tier["match_key"]))
        assert token.hex() == tier["token"]
        info = bytes.fromhex(DATA["holder"]["index_info"])
        assert poprf.evaluate(holder_sk, token, info).hex() == tier["holder_index_output"]


def test_blind_evaluation_verifies_and_finalises_to_the_tokens() -> None:
    ev = DATA["blind_evaluation"]
    keys = [bytes.fromhex(t["match_key"]) for t in DATA["tiers"]]
    outputs = voprf.finalize_batch(keys, bytes.fromhex("".join(ev["blinds"])), bytes.fromhex(ev["evaluated"]),
                                   bytes.fromhex(ev["blinded"]), bytes.fromhex(DATA["issuer"]["pkI"]),
                                   bytes.fromhex(ev["proof"]))
    assert [o.hex() for o in outputs] == [t["token"] for t in DATA["tiers"]]


def test_token_file_verifies(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text(DATA["token_file"]["content"], encoding="ascii")
    parsed = read_token_file(path, bytes.fromhex(DATA["token_file"]["signing_key"]))
    present = {rank: t.hex() for rank, t in enumerate(parsed.tokens[1]) if t is not None}
    assert present == {t["rank"]: t["token"] for t in DATA["tiers"]}


def test_a_whole_session_on_tokens() -> None:
    """The tokens the requester sends meet the holder's index exactly where the holder has the same token;
    a token made under another key meets nothing. The messages themselves are fixed by test_vectors_are_current."""
    session = DATA["session_on_tokens"]
    holder = set(session["holder_tokens"])
    assert session["matched"] == [t in holder for t in session["requester_tokens"]]
    assert any(session["matched"]) and session["matched"][-1] is False
    tokens = {t["token"] for t in DATA["tiers"]}
    assert set(session["requester_tokens"][:-1]) == tokens  # the record's own tokens, as its token file holds them
    kinds = [m["type"] for m in session["messages"]]
    assert kinds[0] == "Hello" and kinds[-2:] == ["Close", "Closed"]
    assert all(len(m["proof"]) == 128 for m in session["messages"] if m["type"] == "EvaluatedBatch")
