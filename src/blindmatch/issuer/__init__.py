"""The issuer role: the authority that issues final orders and, with them, eligibility tokens.

A token is the issuer's RFC 9497 VOPRF output over a record's match key, under a key of
the current epoch. The holder's index holds its own OPRF over the issuer's output for each
of its records (obtained blind, see :mod:`blindmatch.issuer.evaluation` and
:mod:`blindmatch.holder.tokens`), so a requester can only match a (person, address) the
issuer gave it a token for: it cannot compute a token itself (SPEC.md section 15).

Modules: ``epochs`` (periods and their keys), ``keys`` (the seed and signing key files),
``config`` (issuer.toml), ``rules`` (who is eligible), ``tokenfile`` (the signed file),
``issue`` (the offline ``issuer issue``), ``records`` (ORDERS.csv as keyed digests: orders,
addresses on record), ``linkage`` (``issuer approve``: a named person links new addresses),
``evaluation`` (blind evaluation for holders).
"""
