"""The POPRF public input that separates evaluations by organisation, mode and key epoch.

Every evaluation (index build and session) is RFC 9497 POPRF (mode 0x02) under
``info = evaluation_info(organisation, mode, key_id)``: the holder's index for one
organisation and mode is built under that organisation's and mode's info, so its outputs
are unrelated to any other organisation's or mode's (SPEC.md section 2.2). The epoch is
named by its key id: the holder keeps one key per epoch, so a new epoch is a new key id
and everything of the old epoch matches nothing.
"""

from __future__ import annotations

from blindmatch.crypto.modes import length_prefixed
from blindmatch.vocabulary import Mode

INFO_LABEL = b"blindmatch/v1 evaluation"


def evaluation_info(organisation: str, mode: Mode, key_id: bytes) -> bytes:
    """``label || lp(organisation) || lp(mode) || lp(key_id)``, ``lp`` = RFC 9497's I2OSP(len, 2) prefix."""
    if not organisation:
        raise ValueError("the evaluation info needs the requesting organisation")
    if len(key_id) != 32:
        raise ValueError("key id must be 32 bytes")
    return INFO_LABEL + length_prefixed(organisation.encode()) + length_prefixed(mode.value.encode()) + length_prefixed(key_id)


def shuffle_context(session_id: bytes, info: bytes) -> bytes:
    """``ctx`` of a session's shuffle proof (SPEC.md 6.1): ``lp(session_id) || lp(info)``.

    It binds the proof to this session and to the evaluation's purpose: a proof made for
    another session or another organisation's info does not verify here.
    """
    return length_prefixed(session_id) + length_prefixed(info)
