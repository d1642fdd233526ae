"""An index download as a stream of chunks, and its audit entry (SPEC.md 9; issue 14, item 5).

A download that reaches the end is recorded before the chunk that ends it is sent, and
must be (audit before effect, issue 17): if the entry cannot be written the call fails
``audit_unavailable`` and the requester never has the whole index. A download the requester cancelled or lost part way is recorded too,
with ``ended`` = ``Reason.CANCELLED`` and the bytes handed to gRPC by then, since a part of an
index is already something served; the call is over by then, so that entry is
best-effort.
"""

from __future__ import annotations

from collections.abc import Iterator

from blindmatch.audit import entries
from blindmatch.holder.session_ledger import SessionLedger
from blindmatch.holder.store import IndexFile, OpenIndexes
from blindmatch.v1 import holder_pb2 as pb
from blindmatch.vocabulary import Reason


def _chunks(indexes: OpenIndexes, index: IndexFile, offset: int, step: int) -> Iterator[pb.IndexChunk]:
    slot = (index.organisation, index.kind)
    while True:
        data = indexes.read(slot, offset, min(step, index.size_bytes - offset))
        last = offset + len(data) >= index.size_bytes
        yield pb.IndexChunk(offset=offset, data=data, total_bytes=index.size_bytes, digest=index.digest if last else b"")
        if last:
            return
        offset += len(data)


def audited_download(
    ledger: SessionLedger, indexes: OpenIndexes, index: IndexFile, offset: int, step: int, peer: str
) -> Iterator[pb.IndexChunk]:
    """The chunks of ``index`` from ``offset``, each at most ``step`` bytes; audited as the module says."""
    sent = offset  # the end of the last chunk handed to gRPC (sent or queued to be)
    key_id = indexes.manifest.key_id
    complete = False
    try:
        for chunk in _chunks(indexes, index, offset, step):
            if chunk.digest:  # the last chunk: its entry first
                ledger.record(entries.index_downloaded(
                    peer, index.kind.value, index.digest, key_id, index.size_bytes - offset, offset))
                complete = True
            sent = chunk.offset + len(chunk.data)
            yield chunk
    except GeneratorExit:  # closed by gRPC: the requester cancelled or lost the call
        if not complete:
            ledger.record_outcome(entries.index_downloaded(
                peer, index.kind.value, index.digest, key_id, sent - offset, offset, ended=Reason.CANCELLED))
        raise
