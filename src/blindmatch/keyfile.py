"""Secret key files: created 0600 without overwriting, refused when others can read them.

Every secret key (the holder's OPRF key, officials', audit and TLS keys) is created
through :func:`create_new_file` with mode 0600 and read through :func:`read_private`,
which refuses it, with one message, when group or others may access it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from blindmatch.vocabulary import BlindmatchError

OPRF_KEY_HEADER = "blindmatch-oprf-secret-key-v1"


class KeyFileError(BlindmatchError):
    """A key file is missing, malformed, too permissive, or would be overwritten."""


def create_new_file(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Create ``path`` with exactly ``mode`` and ``data``, durably; FileExistsError if it exists."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.fchmod(fd, mode)  # the umask may only narrow the mode; make it exact
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        path.unlink(missing_ok=True)  # a half-written key would block every later attempt (issue 17)
        raise
    os.close(fd)
    fsync_directory(path.parent)


def fsync_directory(directory: Path) -> None:
    """Make a file creation, rename or truncation durable (POSIX needs the directory synced)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def create_secret_file(path: Path, data: bytes) -> None:
    """Write ``data`` to a new file with mode 0600; never replaces an existing file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        create_new_file(path, data, 0o600)
    except FileExistsError:
        raise KeyFileError(f"{path} already exists; refusing to overwrite a key") from None


def read_private(path: Path, error: type[Exception] = KeyFileError, what: str = "key file") -> bytes:
    """The bytes of a secret file, refused (``error``, one message for every key) if group or others may access it.

    The mode is checked on the open descriptor, so the file cannot be swapped between
    the check and the read.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise error(f"{what} {path} does not exist") from None
    except OSError as exc:
        raise error(f"cannot open {what} {path}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as handle:
        mode = stat.S_IMODE(os.fstat(handle.fileno()).st_mode)
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise error(f"{what} {path} is accessible by group or others (mode {mode:04o}); run chmod 600 {path}")
        return handle.read()


def write_oprf_key(path: Path, sk: bytes) -> None:
    create_secret_file(path, f"{OPRF_KEY_HEADER}\n{sk.hex()}\n".encode())


def read_oprf_key(path: Path) -> bytes:
    try:
        lines = read_private(path).decode("ascii").split()
    except UnicodeDecodeError:
        raise KeyFileError(f"{path} is not a blindmatch OPRF key file") from None
    if len(lines) != 2 or lines[0] != OPRF_KEY_HEADER or len(lines[1]) != 64:
        raise KeyFileError(f"{path} is not a blindmatch OPRF key file")
    try:
        return bytes.fromhex(lines[1])
    except ValueError:
        raise KeyFileError(f"{path} is not a blindmatch OPRF key file") from None


def public_key_path(key_path: Path) -> Path:
    """Where the public half of ``key_path`` is written: ``<key_path>.pub`` (suffix appended, not replaced)."""
    return key_path.with_name(key_path.name + ".pub")


def create_ed25519_key(path: Path) -> Ed25519PrivateKey:
    """A fresh Ed25519 signing key in a new PEM (PKCS#8, unencrypted) file of mode 0600; never overwrites."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    create_secret_file(path, pem)
    return key


def read_ed25519_key(path: Path, what: str = "key file") -> Ed25519PrivateKey:
    """The Ed25519 signing key of a 0600 PEM file (refused, naming the file, if it is anything else)."""
    pem = read_private(path, what=what)
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):  # TypeError: the file is encrypted
        raise KeyFileError(f"{path} is not an unencrypted PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{path} is not an Ed25519 key")
    return key
