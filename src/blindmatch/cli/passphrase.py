"""Officials' passphrases and token PINs: typed at a prompt, or from where the official put them.

A key file's passphrase comes from a 0600 file (``--passphrase-file``) or the terminal,
never from an argument (``ps`` shows arguments to every local user; shell histories keep
them). A token PIN comes from the terminal or from the environment variable the
official's configuration names (``pkcs11.pin_env``), for unattended use: a process's
environment is readable only by its own user and root, the PIN alone is useless without
the token, and the token locks itself after a few wrong PINs. Neither is ever stored by
blindmatch, logged, or put into an error message.
"""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path

from blindmatch.cli.errors import CliError
from blindmatch.keyfile import read_private
from blindmatch.officials.config import TokenConfig
from blindmatch.vocabulary import ExitCode


def read_passphrase(passphrase_file: Path | None, *, confirm: bool = False) -> bytes:
    """The passphrase: the first line of ``passphrase_file``, or asked on the terminal."""
    if passphrase_file is not None:
        data = read_private(Path(passphrase_file), CliError, "passphrase file")
        line = data.split(b"\n", 1)[0].rstrip(b"\r")
        if not line:
            raise CliError(f"passphrase file {passphrase_file} is empty", ExitCode.USAGE)
        return line
    if not sys.stdin.isatty():
        raise CliError("no terminal to ask for the passphrase: give --passphrase-file FILE (mode 0600)", ExitCode.USAGE)
    first = getpass.getpass("Passphrase: ").encode("utf-8")
    if confirm and getpass.getpass("Passphrase again: ").encode("utf-8") != first:
        raise CliError("the passphrases differ", ExitCode.USAGE)
    return first


def read_pin(token: TokenConfig) -> str:
    """The token's user PIN: from the environment variable ``pkcs11.pin_env`` names, or asked."""
    if token.pin_env is not None:
        pin = os.environ.get(token.pin_env, "")
        if not pin:
            raise CliError(f"{token.source}: pkcs11.pin_env names {token.pin_env}, which is not set or empty; "
                           "nothing was signed", ExitCode.USAGE)
        return pin
    if not sys.stdin.isatty():
        raise CliError(f"no terminal to ask for the PIN of token {token.token_label!r}: set pkcs11.pin_env in "
                       f"{token.source} to the name of an environment variable holding it; nothing was signed", ExitCode.USAGE)
    pin = getpass.getpass(f"PIN for token {token.token_label!r}: ")
    if not pin:
        raise CliError("no PIN given; nothing was signed", ExitCode.USAGE)
    return pin
