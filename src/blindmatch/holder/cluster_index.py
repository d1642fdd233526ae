"""Index building spread over a Dask cluster (``blindmatch holder index --cluster ADDRESS``).

The driver streams chunks of match keys to the workers; each worker evaluates its chunk
(``index_words``: POPRF HashToGroup and the scalar multiplication under the holder's
key tweaked by the organisation's and kind's info, on all of the worker's cores), hashes the outputs for every index kind
(``outputs_for``) and returns only the two 64-bit words per entry and kind
(``split_outputs``: 16 bytes per entry and kind, never per-record Python objects). The
driver concatenates the words and encodes each index with ``encode_index``.

At most ``max_in_flight`` chunks are outstanding at once, so the driver holds a bounded
number of key chunks whatever the input size; its memory is the words themselves
(16 bytes x entries x kinds) plus the encoding (about 3x one kind's words, transiently).

Security: the OPRF secret key is shipped to the workers with every task (it is a task
argument). Use a cluster that belongs to the holder, with TLS between its nodes
(``tls://`` scheduler address and ``distributed.comm.tls.*`` settings).

Requires the ``cluster`` extra (``dask[distributed]``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from blindmatch.core.index import encode_index
from blindmatch.core.index_builder import index_words
from blindmatch.core.keys import HolderKey
from blindmatch.vocabulary import Mode

if TYPE_CHECKING:
    from blindmatch.crypto.batch import BatchEngine

_ENGINE: BatchEngine | None = None  # one BatchEngine per worker process, reused across tasks


def _worker_engine() -> BatchEngine:
    global _ENGINE
    if _ENGINE is None:
        from blindmatch.crypto.batch import BatchEngine

        _ENGINE = BatchEngine()
    return _ENGINE


def evaluate_chunk(
    sk: bytes, organisation: str, keys: Sequence[bytes], kinds: Sequence[str]
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Worker task: the (hi, lo) words of every key's output, per index kind (``index_words``)."""
    key = HolderKey(sk)
    return {kind: index_words(_worker_engine(), key, organisation, Mode(kind), keys) for kind in kinds}


class ClusterIndexBuilder:
    """Drop-in for :class:`~blindmatch.core.index_builder.IndexBuilder` whose ``add`` runs on Dask.

    Same interface (``add(keys)``, ``entries``, ``finish() -> dict[Mode, bytes]``), so a
    caller that streams normalised keys into an ``IndexBuilder`` (``holder index``) can use
    this one instead. ``add`` returns as soon as the chunk is submitted, unless
    ``max_in_flight`` chunks are already outstanding, in which case it first collects one.
    Call :meth:`close` (or use it as a context manager) to release a client it created.

    ``address_or_client``: a scheduler address (``"tcp://host:8786"``, ``"tls://..."``) or a
    ``distributed.Client``. ``max_in_flight`` bounds the chunks outstanding at once
    (default: twice the cluster's worker threads, at least 4).
    """

    def __init__(
        self,
        key: HolderKey,
        schema_fingerprint: bytes,
        address_or_client: Any,
        organisation: str,
        kinds: Sequence[Mode] = (Mode.MEMBERSHIP, Mode.CARDINALITY),
        max_in_flight: int | None = None,
    ) -> None:
        from distributed import Client, as_completed

        self._key = key
        self.organisation = organisation
        self._fingerprint = schema_fingerprint
        self._own_client = not isinstance(address_or_client, Client)
        self._client = Client(address_or_client) if self._own_client else address_or_client
        self._kinds = [Mode(k).value for k in kinds]
        self._words: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = {k: ([], []) for k in self._kinds}
        if max_in_flight is None:
            threads = sum(self._client.nthreads().values()) or 1
            max_in_flight = max(4, 2 * threads)
        self._max_in_flight = max(1, max_in_flight)
        # 32 bytes travel with each task: a scattered copy saved nothing and raced the first
        # tasks on a fresh cluster ("lost dependencies").
        self._sk = key.sk
        self._pending = as_completed()
        self._in_flight = 0
        self.entries = 0

    def add(self, keys: Sequence[bytes]) -> None:
        if not keys:
            return
        while self._in_flight >= self._max_in_flight:
            self._collect(next(self._pending))
        self._pending.add(self._client.submit(evaluate_chunk, self._sk, self.organisation, list(keys), self._kinds, pure=False))
        self._in_flight += 1
        self.entries += len(keys)

    def _collect(self, future: Any) -> None:
        result = future.result()
        for kind in self._kinds:
            hi, lo = result[kind]
            self._words[kind][0].append(hi)
            self._words[kind][1].append(lo)
        future.release()
        self._in_flight -= 1

    def finish(self) -> dict[Mode, bytes]:
        """Wait for every chunk, then encode each kind's index here; the builder is spent afterwards."""
        for future in self._pending:
            self._collect(future)
        out: dict[Mode, bytes] = {}
        for kind in self._kinds:
            his, los = self._words.pop(kind)
            hi = np.concatenate(his) if his else np.zeros(0, np.uint64)
            his.clear()
            lo = np.concatenate(los) if los else np.zeros(0, np.uint64)
            los.clear()
            out[Mode(kind)] = encode_index(Mode(kind), self._key.key_id, self._fingerprint, hi, lo)
            del hi, lo
        return out

    def build(self, chunks: Iterable[Sequence[bytes]]) -> dict[Mode, bytes]:
        """Add every chunk of match keys and finish: each kind's index, encoded here."""
        for chunk in chunks:
            self.add(chunk)
        return self.finish()

    def close(self) -> None:
        if self._own_client:
            self._client.close()

    def __enter__(self) -> ClusterIndexBuilder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

