"""Normalisation of names, US postal addresses and dates, and the match keys built from them.

Exact PSI finds a person only when both organisations turn that person into the same
bytes: this package decides those bytes. See protocol/SPEC.md section 8.
"""

from blindmatch.normalize.address import Address, normalize_address, parse_address
from blindmatch.normalize.date import normalize_date
from blindmatch.normalize.errors import NormalizationError, SchemaError, SchemaMismatchError
from blindmatch.normalize.name import normalize_name
from blindmatch.normalize.schema import (
    BUILTIN_SCHEMAS,
    Schema,
    SchemaSource,
    Tier,
    builtin_schema,
    default_schema,
    load_schema,
    resolve_schema,
    schema_source,
)

__all__ = [
    "BUILTIN_SCHEMAS",
    "Address",
    "NormalizationError",
    "Schema",
    "SchemaError",
    "SchemaMismatchError",
    "SchemaSource",
    "Tier",
    "builtin_schema",
    "default_schema",
    "load_schema",
    "normalize_address",
    "normalize_date",
    "normalize_name",
    "parse_address",
    "resolve_schema",
    "schema_source",
]
