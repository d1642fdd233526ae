"""Builds the holder's encrypted indexes from its match keys, streamed chunk by chunk.

Only two 64-bit words per entry and kind are kept (numpy arrays), never per-record
Python objects, so memory is about 16 bytes per entry per kind plus one chunk.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from blindmatch.core.index import encode_index
from blindmatch.core.keys import HolderKey
from blindmatch.core.outputs import outputs_for, split_outputs
from blindmatch.crypto.batch import BatchEngine
from blindmatch.vocabulary import Mode


class IndexBuilder:
    def __init__(
        self,
        key: HolderKey,
        schema_fingerprint: bytes,
        engine: BatchEngine,
        kinds: Sequence[Mode] = (Mode.MEMBERSHIP, Mode.CARDINALITY),
    ) -> None:
        self._key = key
        self._fingerprint = schema_fingerprint
        self._engine = engine
        self._kinds = tuple(kinds)
        self._hi: dict[Mode, list[np.ndarray]] = {k: [] for k in self._kinds}
        self._lo: dict[Mode, list[np.ndarray]] = {k: [] for k in self._kinds}
        self.entries = 0

    def add(self, keys: Sequence[bytes]) -> None:
        """Evaluate one chunk of match keys under the holder's key and keep their entries."""
        if not keys:
            return
        elements = self._engine.evaluate_elements(self._key.sk, keys)
        for kind in self._kinds:
            hi, lo = split_outputs(outputs_for(kind, list(keys), elements))
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
