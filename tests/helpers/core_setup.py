"""A holder's session configuration with its built indexes, for tests of the sans-IO cores."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from blindmatch.core.holder import HolderConfig
from blindmatch.core.index import EncryptedIndex
from blindmatch.core.index_builder import IndexBuilder
from blindmatch.core.keys import HolderKey
from blindmatch.crypto.batch import BatchEngine
from blindmatch.vocabulary import Mode


def built_holder(
    engine: BatchEngine, keys: Sequence[bytes], fingerprint: bytes, organisation: str, **limits: Any
) -> tuple[HolderKey, HolderConfig, dict[Mode, EncryptedIndex]]:
    """A fresh holder key, both indexes of ``keys`` for ``organisation``, and the config naming them."""
    key = HolderKey.generate()
    builder = IndexBuilder(key, fingerprint, engine, organisation)
    builder.add(list(keys))
    indexes = {mode: EncryptedIndex.parse(data) for mode, data in builder.finish().items()}
    config = HolderConfig(key.sk, key.key_id, fingerprint, {m: i.digest for m, i in indexes.items()}, **limits)
    return key, config, indexes
