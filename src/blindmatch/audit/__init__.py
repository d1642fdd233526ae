"""Tamper-evident audit trail of each side (holder, requester).

Append-only JSON Lines logs whose entries are leaves of an RFC 9162 Merkle
tree, signed checkpoints in signed-note format, signed session transcripts,
and the reviewer tools that verify, reconcile and report on them. See
``protocol/SPEC.md`` (audit section) for the formats.
"""

from blindmatch.audit.checkpoint import Checkpoint
from blindmatch.audit.keys import sign_transcript, verify_transcript_signature
from blindmatch.audit.log import AuditError, AuditLog
from blindmatch.audit.reconcile import ReconcileResult, reconcile
from blindmatch.audit.report import write_report
from blindmatch.audit.verify import VerifyResult, load_entries, verify_log

__all__ = [
    "AuditError",
    "AuditLog",
    "Checkpoint",
    "ReconcileResult",
    "VerifyResult",
    "load_entries",
    "reconcile",
    "sign_transcript",
    "verify_log",
    "verify_transcript_signature",
    "write_report",
]
