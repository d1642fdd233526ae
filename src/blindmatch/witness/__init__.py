"""The witness role: an independent party that cosigns audit-log checkpoints.

Each side signs its own audit log, so its operator can rewrite and re-sign it. A
witness (for example an inspector general) keeps the latest checkpoint it cosigned
for every log it witnesses and cosigns a new one only if it provably extends that
one (C2SP tlog-witness, tlog-cosignature; protocol/SPEC.md section 14).
"""
