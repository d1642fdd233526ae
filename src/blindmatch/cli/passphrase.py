"""Officials' passphrases: from a 0600 file (``--passphrase-file``) or typed at a prompt.

Never from an argument or the environment: both are visible to other local users
(``ps``, ``/proc/PID/environ``) and end up in shell histories.
"""

from __future__ import annotations

import getpass
import sys
from pathlib import Path

from blindmatch.cli.errors import CliError
from blindmatch.keyfile import read_private
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
