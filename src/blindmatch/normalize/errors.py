"""The one error type of the normalisers.

Records are personal data: a message names the field (and the row, when the caller
knows it) and says what is wrong, but does not quote the value, so that errors can be
logged or sent to a peer without leaking the record.
"""

from __future__ import annotations


class NormalizationError(ValueError):
    """A value that cannot be turned into its canonical form.

    ``field`` is the schema field (or the kind of value, e.g. ``"address"``) and
    ``row`` the 1-based input row when the caller supplied one.
    """

    def __init__(self, field: str, reason: str, row: int | None = None) -> None:
        self.field = field
        self.reason = reason
        self.row = row
        where = f"row {row}: " if row is not None else ""
        super().__init__(f"{where}{field}: {reason}")

    def with_context(self, field: str, row: int | None = None) -> NormalizationError:
        """The same error re-addressed to a schema field name and row."""
        return NormalizationError(field, self.reason, row if row is not None else self.row)


class SchemaError(ValueError):
    """A schema TOML that is malformed or refers to unknown normalisers or fields."""


class SchemaMismatchError(RuntimeError):
    """The peer announced another schema fingerprint: matching would silently find nobody."""
