"""The one place that imports rbcl: loads its bundled libsodium and removes the temp copy.

rbcl ships libsodium as a hex string inside ``rbcl/_sodium.py``; on import it writes a
2.8 MB copy to ``tempfile.gettempdir()`` with ``delete=False``, ``dlopen``s it and never
removes it, so every process that imports rbcl (``blindmatch --help`` included) used to
leave one more ``tmp*.so`` behind. Once the library is mapped, the file is no longer
needed on POSIX systems (the mapping keeps the inode alive), so we unlink it right after
import. Windows cannot delete a loaded DLL; there the copy stays, as upstream leaves it.

Every other module uses ``from blindmatch.crypto.sodium import rbcl`` (the wrapped
ristretto255 functions) or :data:`lib` (the raw ``ctypes`` handle, for libsodium
functions rbcl does not wrap, such as the Ed25519 ones).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
import types
from typing import Protocol

import rbcl as _rbcl_package

# rbcl's package namespace rebinds ``rbcl._sodium`` to the CDLL, so fetch the loader module
# (absent if a future rbcl loads libsodium some other way: then there is nothing to remove).
_rbcl_loader: types.ModuleType | None = sys.modules.get("rbcl._sodium")


class RistrettoFunctions(Protocol):
    """The typed subset of rbcl's (untyped) wrappers that blindmatch uses.

    Each wrapper checks lengths and raises ``RuntimeError`` where libsodium fails
    (e.g. a scalar multiplication with a non-canonical element or identity result).
    """

    def crypto_core_ristretto255_is_valid_point(self, p: bytes) -> bool: ...
    def crypto_core_ristretto255_random(self) -> bytes: ...
    def crypto_core_ristretto255_from_hash(self, h: bytes) -> bytes: ...
    def crypto_core_ristretto255_add(self, p: bytes, q: bytes) -> bytes: ...
    def crypto_core_ristretto255_sub(self, p: bytes, q: bytes) -> bytes: ...
    def crypto_core_ristretto255_scalar_random(self) -> bytes: ...
    def crypto_core_ristretto255_scalar_reduce(self, s: bytes) -> bytes: ...
    def crypto_core_ristretto255_scalar_invert(self, s: bytes) -> bytes: ...
    def crypto_core_ristretto255_scalar_add(self, s: bytes, t: bytes) -> bytes: ...
    def crypto_core_ristretto255_scalar_sub(self, s: bytes, t: bytes) -> bytes: ...
    def crypto_core_ristretto255_scalar_mul(self, s: bytes, t: bytes) -> bytes: ...
    def crypto_scalarmult_ristretto255_base(self, s: bytes) -> bytes: ...
    def crypto_scalarmult_ristretto255(self, s: bytes, p: bytes) -> bytes: ...

__all__ = ["RistrettoFunctions", "lib", "rbcl", "sodium_version"]


def _remove_temporary_copy() -> None:
    """Unlink rbcl's temporary copy of libsodium and drop the 2.8 MB bytes it kept alive."""
    if _rbcl_loader is None:
        return
    path = getattr(_rbcl_loader, "lib_path", None)
    if isinstance(path, str) and sys.platform != "win32":
        # Already gone if the module was reloaded or another cleaner ran first.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    if hasattr(_rbcl_loader, "sodium_bs"):
        del _rbcl_loader.sodium_bs


_remove_temporary_copy()

rbcl: RistrettoFunctions = _rbcl_package
lib: ctypes.CDLL = _rbcl_package.rbcl._sodium


def sodium_version() -> str:
    """The version string of the libsodium that rbcl bundles (e.g. ``"1.0.18"``)."""
    version = lib.sodium_version_string
    version.restype = ctypes.c_char_p
    raw = version()
    return raw.decode() if isinstance(raw, bytes) else "unknown"
