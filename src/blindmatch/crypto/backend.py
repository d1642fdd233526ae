"""Which arithmetic runs the batched ristretto255 work: libsodium (rbcl) or the native C backend.

Both backends compute exactly the same bytes (RFC 9496/9497); the native one is faster
because it batches, releases the GIL for a whole chunk and runs several scalar
multiplications at once: eight on CPUs with AVX-512 IFMA, four on AVX2. libsodium stays the reference and the
fallback when the optional C extension was not built.

Choice, strongest first: the ``backend`` argument (a config switch, e.g. of
:class:`blindmatch.crypto.batch.BatchEngine`), then ``BLINDMATCH_CRYPTO_BACKEND``
(``libsodium`` | ``native`` | ``auto``), then ``auto``. ``native`` may name its path,
``native:portable``, ``native:avx2`` or ``native:ifma``, to force one in tests;
``BLINDMATCH_NATIVE_PATH`` does the same for ``native``. ``auto`` picks the fastest
vector path the CPU has (IFMA, then AVX2) and libsodium otherwise: the portable C path
is correct but no faster than libsodium per multiplication (``benchmarks/native_bench.py``),
so it is opt-in.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Sequence
from functools import cache
from typing import Protocol

from blindmatch.crypto import group
from blindmatch.crypto.native import load as load_native
from blindmatch.crypto.sodium import rbcl

BACKEND_ENV = "BLINDMATCH_CRYPTO_BACKEND"
NATIVE_PATH_ENV = "BLINDMATCH_NATIVE_PATH"
CHOICES = ("auto", "libsodium", "native")


class BackendUnavailableError(RuntimeError):
    """The configured backend cannot run here (extension not built, or the CPU lacks the path)."""


class Backend(Protocol):
    """Batch operations on concatenated 32-byte scalars and elements; failures return an index."""

    name: str

    def mult(self, scalars: bytes, elements: bytes) -> tuple[bytes, int]:
        """``s_i * e_i`` (or ``s * e_i`` when ``scalars`` is one scalar); first index that fails, or -1."""
        ...

    def hash_to_group(self, inputs: Sequence[bytes], dst: bytes, scalars: bytes) -> tuple[bytes, int]:
        """``[s_i *] HashToGroup(input_i)``; ``scalars`` is b"", one scalar or one per input; first identity or -1."""
        ...

    def invert(self, scalars: bytes) -> bytes:
        """Inverses modulo L of concatenated non-zero scalars."""
        ...

    def finalize(self, inputs: Sequence[bytes], elements: bytes, info: bytes | None = None) -> bytes:
        """RFC 9497 Finalize's hash of each (input, unblinded element) pair, 64 bytes each (POPRF with ``info``)."""
        ...

    def random_scalars(self, n: int) -> bytes:
        """``n`` fresh uniformly random non-zero scalars (RFC 9497 RandomScalar), concatenated."""
        ...

    def add(self, p: bytes, q: bytes, subtract: bool) -> tuple[bytes, int]:
        """``p_i + q_i`` (``p_i - q_i`` with ``subtract``), constant time; first pair with an invalid element, or -1."""
        ...

    def hash_to_scalars(self, inputs: Sequence[bytes], dst: bytes) -> bytes:
        """``expand_message_xmd_SHA512(input_i, dst, 64)`` read little-endian modulo L (RFC 9380 hash_to_field)."""
        ...

    def msm(self, scalars: bytes, elements: bytes) -> tuple[bytes, int]:
        """``sum s_i * e_i`` of public inputs (one scalar per element); first invalid or identity element, or -1."""
        ...

    def composite_weights(self, seed: bytes, c: bytes, d: bytes, start: int, dst: bytes) -> bytes:
        """RFC 9497 ComputeComposites' ``d_i`` for elements ``start, start + 1, ...`` of a batch."""
        ...


class LibsodiumBackend:
    """One rbcl call per element: the reference implementation."""

    name = "libsodium"

    def mult(self, scalars: bytes, elements: bytes) -> tuple[bytes, int]:
        n = len(elements) // 32
        step = 0 if len(scalars) == 32 else 32
        mult = rbcl.crypto_scalarmult_ristretto255
        out: list[bytes] = []
        for i in range(n):
            try:
                out.append(mult(scalars[i * step : i * step + 32], elements[i * 32 : (i + 1) * 32]))
            except RuntimeError:
                return b"".join(out), i
        return b"".join(out), -1

    def hash_to_group(self, inputs: Sequence[bytes], dst: bytes, scalars: bytes) -> tuple[bytes, int]:
        from blindmatch.crypto.h2c import expand_message_xmd_sha512

        step = 0 if len(scalars) == 32 else 32
        out: list[bytes] = []
        for i, data in enumerate(inputs):
            element = group.element_from_uniform(expand_message_xmd_sha512(data, dst, 64))
            if scalars:
                try:
                    element = rbcl.crypto_scalarmult_ristretto255(scalars[i * step : i * step + 32], element)
                except RuntimeError:
                    return b"".join(out), i
            elif element == group.IDENTITY:
                return b"".join(out), i
            out.append(element)
        return b"".join(out), -1

    def invert(self, scalars: bytes) -> bytes:
        return group.batch_invert(scalars)

    def finalize(self, inputs: Sequence[bytes], elements: bytes, info: bytes | None = None) -> bytes:
        from blindmatch.crypto import oprf, poprf

        too_long = next((i for i, x in enumerate(inputs) if len(x) > oprf.MAX_INPUT_BYTES), -1)
        if too_long >= 0:
            raise oprf.InvalidInputError(f"input {too_long} longer than {oprf.MAX_INPUT_BYTES} bytes")
        if info is None:
            return b"".join(oprf.finalize_unblinded(x, elements[32 * i : 32 * i + 32]) for i, x in enumerate(inputs))
        return b"".join(poprf.finalize_unblinded(x, info, elements[32 * i : 32 * i + 32]) for i, x in enumerate(inputs))

    def random_scalars(self, n: int) -> bytes:
        return b"".join(rbcl.crypto_core_ristretto255_scalar_random() for _ in range(n))

    def add(self, p: bytes, q: bytes, subtract: bool) -> tuple[bytes, int]:
        op = rbcl.crypto_core_ristretto255_sub if subtract else rbcl.crypto_core_ristretto255_add
        out: list[bytes] = []
        for i in range(len(p) // 32):
            x, y = p[32 * i : 32 * i + 32], q[32 * i : 32 * i + 32]
            if (x[31] | y[31]) & 0x80 or not all(e == group.IDENTITY or rbcl.crypto_core_ristretto255_is_valid_point(e)
                                                 for e in (x, y)):
                return b"".join(out), i
            out.append(op(x, y))
        return b"".join(out), -1

    def hash_to_scalars(self, inputs: Sequence[bytes], dst: bytes) -> bytes:
        from blindmatch.crypto.h2c import expand_message_xmd_sha512

        return b"".join(group.scalar_from_uniform(expand_message_xmd_sha512(x, dst, 64)) for x in inputs)

    def msm(self, scalars: bytes, elements: bytes) -> tuple[bytes, int]:
        """One multiplication per element, then additions: libsodium has no multi-scalar multiplication."""
        total = group.IDENTITY
        for i in range(len(elements) // 32):
            element = elements[32 * i : 32 * i + 32]
            if element == group.IDENTITY or element[31] & 0x80 or not rbcl.crypto_core_ristretto255_is_valid_point(element):
                return group.IDENTITY, i
            scalar = scalars[32 * i : 32 * i + 32]
            try:
                term = rbcl.crypto_scalarmult_ristretto255(scalar, element)
            except RuntimeError:  # s_i * e_i is the identity (s_i = 0 mod L)
                continue
            total = term if total == group.IDENTITY else rbcl.crypto_core_ristretto255_add(total, term)
        return total, -1

    def composite_weights(self, seed: bytes, c: bytes, d: bytes, start: int, dst: bytes) -> bytes:
        from blindmatch.crypto.h2c import expand_message_xmd_sha512
        from blindmatch.crypto.modes import i2osp, length_prefixed

        prefix = length_prefixed(seed)
        out = []
        for i in range(len(c) // 32):
            ci, di = c[32 * i : 32 * i + 32], d[32 * i : 32 * i + 32]
            transcript = prefix + i2osp(start + i, 2) + length_prefixed(ci) + length_prefixed(di) + b"Composite"
            out.append(group.scalar_from_uniform(expand_message_xmd_sha512(transcript, dst, 64)))
        return b"".join(out)


class NativeBackend:
    """The C extension on one arithmetic path (``portable``, ``avx2`` or ``ifma``)."""

    def __init__(self, path: str) -> None:
        module = load_native()
        if module is None:
            raise BackendUnavailableError(
                "the native ristretto255 extension was not built, or is older than its C sources; reinstall with a C compiler"
            )
        if path not in module.paths():
            raise BackendUnavailableError(f"native path {path!r} is not available on this CPU (has {module.paths()})")
        self._r255 = module
        self.path = path
        self.name = f"native:{path}"

    def mult(self, scalars: bytes, elements: bytes) -> tuple[bytes, int]:
        out, bad = self._r255.mult(self.path, scalars, elements)
        return out, bad

    def hash_to_group(self, inputs: Sequence[bytes], dst: bytes, scalars: bytes) -> tuple[bytes, int]:
        data, offsets = pack_messages(inputs)
        out, bad = self._r255.hash_to_group(self.path, data, offsets, dst, scalars)
        return out, bad

    def invert(self, scalars: bytes) -> bytes:
        try:
            out: bytes = self._r255.scalar_invert(scalars)
        except ValueError as exc:
            raise group.InvalidScalarError(str(exc)) from None
        return out

    def finalize(self, inputs: Sequence[bytes], elements: bytes, info: bytes | None = None) -> bytes:
        from blindmatch.crypto.oprf import MAX_INPUT_BYTES, InvalidInputError

        if info is not None and len(info) > MAX_INPUT_BYTES:
            raise InvalidInputError(f"info longer than {MAX_INPUT_BYTES} bytes")
        data, offsets = pack_messages(inputs)
        out, too_long = (self._r255.finalize(data, offsets, elements) if info is None
                         else self._r255.finalize(data, offsets, elements, info))
        if too_long >= 0:
            raise InvalidInputError(f"input {too_long} longer than {MAX_INPUT_BYTES} bytes")
        result: bytes = out
        return result

    def add(self, p: bytes, q: bytes, subtract: bool) -> tuple[bytes, int]:
        """Eight (IFMA) or four (AVX2) additions at a time in C, without the GIL."""
        out, bad = self._r255.add(self.path, p, q, subtract)
        return out, bad

    def hash_to_scalars(self, inputs: Sequence[bytes], dst: bytes) -> bytes:
        """Both steps in C without the GIL: the batch expand_message_xmd, then the batch reduction."""
        data, offsets = pack_messages(inputs)
        scalars: bytes = self._r255.scalar_reduce(self._r255.expand_message_xmd(data, offsets, dst))
        return scalars

    def random_scalars(self, n: int) -> bytes:
        """64 random bytes reduced mod L per scalar (RFC 9496's uniform scalar; bias below 2^-250), in C.

        A zero scalar (probability 2^-252 each) is drawn again: RFC 9497 blinds are non-zero.
        """
        out = bytearray(self._r255.scalar_reduce(os.urandom(64 * n)))
        for i in range(n):
            while not any(out[32 * i : 32 * i + 32]):
                out[32 * i : 32 * i + 32] = self._r255.scalar_reduce(os.urandom(64))
        return bytes(out)

    def msm(self, scalars: bytes, elements: bytes) -> tuple[bytes, int]:
        """Pippenger's bucket method in C, variable time: callers pass public scalars and elements only."""
        out, bad = self._r255.msm(self.path, scalars, elements)
        return (group.IDENTITY, bad) if bad >= 0 else (out, -1)

    def composite_weights(self, seed: bytes, c: bytes, d: bytes, start: int, dst: bytes) -> bytes:
        weights: bytes = self._r255.composite_weights(seed, c, d, start, dst)
        return weights

    def validate(self, elements: bytes, reject_identity: bool = True) -> int:
        """Index of the first element failing RFC 9496 Decode (or being the identity), or -1."""
        bad: int = self._r255.validate(self.path, elements, reject_identity)
        return bad


def pack_messages(inputs: Sequence[bytes]) -> tuple[bytes, bytes]:
    """Concatenated messages and their n + 1 native uint64 boundaries, as the C side reads them."""
    offsets = [0]
    total = 0
    for data in inputs:
        total += len(data)
        offsets.append(total)
    return b"".join(inputs), struct.pack(f"={len(offsets)}Q", *offsets)


def native_paths() -> tuple[str, ...]:
    """The native arithmetic paths this machine can run; empty when the extension is missing."""
    module = load_native()
    return tuple(module.paths()) if module is not None else ()


@cache
def _resolve(choice: str) -> Backend:
    if choice == "libsodium":
        return LibsodiumBackend()
    if choice == "auto":
        vector = [path for path in ("ifma", "avx2") if path in native_paths()]
        return NativeBackend(vector[0]) if vector else LibsodiumBackend()
    if choice.startswith("native:"):
        return NativeBackend(choice.removeprefix("native:"))
    raise BackendUnavailableError(f"unknown crypto backend {choice!r}; choose one of {', '.join(CHOICES)} (or native:PATH)")


def finalize_many(inputs: Sequence[bytes], elements: bytes, choice: str | None = None, info: bytes | None = None) -> bytes:
    """RFC 9497 Finalize's hash for ``n`` inputs and their ``n * 32`` bytes of unblinded elements.

    On the native backend one C call hashes the whole batch without the GIL (the index
    build's and the requester's last per-record step); the bytes are the same as
    ``oprf.finalize_unblinded``'s, or with ``info`` (POPRF) as ``poprf.finalize_unblinded``'s.
    """
    if len(elements) != 32 * len(inputs):
        raise ValueError("membership outputs need the input of every element")
    return select(choice).finalize(inputs, elements, info)


def random_scalars(n: int, choice: str | None = None) -> bytes:
    """``n`` fresh non-zero scalars from the OS's CSPRNG (fresh blinds), in one call on the native backend."""
    return select(choice).random_scalars(n)


def select(choice: str | None = None) -> Backend:
    """The backend for ``choice``, else ``$BLINDMATCH_CRYPTO_BACKEND``, else ``auto``."""
    name = (choice or os.environ.get(BACKEND_ENV) or "auto").strip().lower()
    if name == "native":
        paths = native_paths()
        name = "native:" + (os.environ.get(NATIVE_PATH_ENV) or (paths[-1] if paths else "portable"))
    return _resolve(name)
