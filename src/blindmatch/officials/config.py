"""An official's own configuration file: where their approval key is.

``official.toml`` (the official's, not a daemon's) names exactly one of:

    [key]
    file = "alice.key"                          # passphrase-encrypted PEM (official keygen)

    [pkcs11]
    library = "/usr/lib/softhsm/libsofthsm2.so" # the token vendor's PKCS#11 module
    token_label = "alice"
    key_label = "blindmatch-approval"
    pin_env = "BLINDMATCH_TOKEN_PIN"            # optional; the PIN is asked otherwise

The PIN itself is never in this file: a file is copied into backups and read by
whoever can read the directory. Relative paths are resolved against the file's directory.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from blindmatch.tomlfile import load_toml
from blindmatch.vocabulary import BlindmatchError

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_TABLES = {"key": ({"file"}, set()), "pkcs11": ({"library", "token_label", "key_label"}, {"pin_env"})}


class OfficialConfigError(BlindmatchError, ValueError):
    """An official's configuration file is unreadable or incomplete; the message names file and key."""


@dataclass(frozen=True)
class TokenConfig:
    """Where a PKCS#11-held Ed25519 key is: module, token label, key label, and the PIN's variable."""

    source: Path  # the configuration file, for error messages
    library: Path
    token_label: str
    key_label: str
    pin_env: str | None


@dataclass(frozen=True)
class SignerConfig:
    """Exactly one of ``key_file`` and ``token`` is set."""

    source: Path
    key_file: Path | None = None
    token: TokenConfig | None = None


def _text(path: Path, table: str, data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip() or "\x00" in value:
        raise OfficialConfigError(f"{path}: {table}.{key} must be a non-empty string")
    return value


def _check_keys(path: Path, table: str, data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise OfficialConfigError(f"{path}: [{table}] must be a table")
    required, optional = _TABLES[table]
    unknown = sorted(set(data) - required - optional)
    if unknown:
        raise OfficialConfigError(f"{path}: unknown setting {table}.{unknown[0]} (allowed: {', '.join(sorted(required | optional))})")
    missing = sorted(required - set(data))
    if missing:
        raise OfficialConfigError(f"{path}: [{table}] needs {missing[0]}")
    return data


def load_signer_config(path: Path) -> SignerConfig:
    """Parse ``official.toml``; every problem names the file and the setting."""
    path = Path(path)
    data = load_toml(path, OfficialConfigError, "official configuration")
    unknown = sorted(set(data) - set(_TABLES))
    if unknown:
        raise OfficialConfigError(f"{path}: unknown section [{unknown[0]}] (allowed: [key] or [pkcs11])")
    if len(data) != 1:
        raise OfficialConfigError(f"{path}: give exactly one of [key] (an encrypted key file) and [pkcs11] (a token)")
    base = path.parent
    if "key" in data:
        table = _check_keys(path, "key", data["key"])
        return SignerConfig(source=path, key_file=(base / _text(path, "key", table, "file")).resolve())
    table = _check_keys(path, "pkcs11", data["pkcs11"])
    pin_env = table.get("pin_env")
    if pin_env is not None and (not isinstance(pin_env, str) or not _ENV_NAME.match(pin_env)):
        raise OfficialConfigError(f"{path}: pkcs11.pin_env must name an environment variable (letters, digits, _)")
    return SignerConfig(source=path, token=TokenConfig(
        source=path,
        library=(base / _text(path, "pkcs11", table, "library")).resolve(),
        token_label=_text(path, "pkcs11", table, "token_label"),
        key_label=_text(path, "pkcs11", table, "key_label"),
        pin_env=pin_env,
    ))
