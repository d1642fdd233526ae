"""Builds the holder's encrypted indexes from its match keys, streamed chunk by chunk.

Only two 64-bit words per entry and kind are kept (numpy arrays), never per-record
Python objects, so memory is about 16 bytes per entry per kind plus one chunk.

An index serves one organisation and one mode: each kind is evaluated under its own
POPRF info (``core.purpose``), i.e. with the tweaked key ``(skS + m)^-1``, so the
entries of one organisation's or mode's index are unrelated to any other's.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from blindmatch.core.index import encode_index
from blindmatch.core.keys import HolderKey
from blindmatch.core.outputs import outputs_for, split_outputs
from blindmatch.core.purpose import evaluation_info
from blindmatch.crypto import group, poprf
from blindmatch.crypto.batch import BatchEngine
from blindmatch.crypto.modes import POPRF
from blindmatch.vocabulary import Mode


def index_words(
    engine: BatchEngine, key: HolderKey, organisation: str, kind: Mode, keys: Sequence[bytes]
) -> tuple[np.ndarray, np.ndarray]:
    """The (hi, lo) words of POPRF Evaluate(skS, key, info(organisation, kind, key_id)) for each key."""
    info = evaluation_info(organisation, kind, key.key_id)
    t_inverse = group.invert(poprf.tweaked_secret(key.sk, info))
    elements = engine.evaluate_elements_in_mode(POPRF, t_inverse, keys)
    return split_outputs(outputs_for(kind, list(keys), elements, info))


class IndexBuilder:
    def __init__(
        self,
        key: HolderKey,
        schema_fingerprint: bytes,
        engine: BatchEngine,
        organisation: str,
        kinds: Sequence[Mode] = (Mode.MEMBERSHIP, Mode.CARDINALITY),
    ) -> None:
        self._key = key
        self.organisation = organisation
        self._fingerprint = schema_fingerprint
        self._engine = engine
        self._kinds = tuple(kinds)
        self._hi: dict[Mode, list[np.ndarray]] = {k: [] for k in self._kinds}
        self._lo: dict[Mode, list[np.ndarray]] = {k: [] for k in self._kinds}
        self.entries = 0

    def add(self, keys: Sequence[bytes]) -> None:
        """Evaluate one chunk of match keys under each kind's info and keep their entries."""
        if not keys:
            return
        for kind in self._kinds:
            hi, lo = index_words(self._engine, self._key, self.organisation, kind, keys)
            self._hi[kind].append(hi)
            self._lo[kind].append(lo)
        self.entries += len(keys)

    def finish(self) -> dict[Mode, bytes]:
        """Encode each kind's index; the builder is spent afterwards."""
        out = {}
        for kind in self._kinds:
            hi = np.concatenate(self._hi.pop(kind)) if self._hi[kind] else np.zeros(0, np.uint64)
            lo = np.concatenate(self._lo.pop(kind)) if self._lo[kind] else np.zeros(0, np.uint64)
            out[kind] = encode_index(kind, self._key.key_id, self._fingerprint, hi, lo)
        return out
