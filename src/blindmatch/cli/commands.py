"""How a command group is declared, the same way for every ``blindmatch GROUP SUBCOMMAND``.

Each subcommand has its help line, its description, the function it runs and, for a
role's commands, ``--config ROLE_TOML``; ``CommandGroup.add`` declares them at once so
that no group spells them differently. The options several groups share (the daemons'
``--log-format``) are declared here once too.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from pathlib import Path

from blindmatch.cli.errors import CliError
from blindmatch.transport.jsonlog import configure_logging
from blindmatch.vocabulary import ExitCode

Command = Callable[[argparse.Namespace], int]


class CommandGroup:
    """``blindmatch NAME``: its subcommands, those of a role each with the role's ``--config`` file."""

    def __init__(self, subparsers: argparse._SubParsersAction[argparse.ArgumentParser], name: str, help_text: str,
                 description: str | None = None) -> None:
        self.name = name
        parser = subparsers.add_parser(name, help=help_text, description=description)
        self.commands = parser.add_subparsers(dest=f"{name}_command", metavar="SUBCOMMAND", required=True)

    def add(self, name: str, func: Command, help_text: str, description: str, *,
            config: bool = True, epilog: str | None = None) -> argparse.ArgumentParser:
        """Declare ``blindmatch GROUP NAME``; the caller adds its own arguments to the parser returned.

        With ``config``, the command takes ``--config GROUP_TOML``, the group's configuration file."""
        command = self.commands.add_parser(name, help=help_text, description=description, epilog=epilog)
        if config:
            command.add_argument("--config", required=True, type=Path, metavar=f"{self.name.upper()}_TOML",
                                 help=f"the {self.name}'s configuration file")
        command.set_defaults(func=func)
        return command


def add_log_format(command: argparse.ArgumentParser) -> None:
    """A daemon's ``--log-format``: how ``transport.jsonlog`` writes its stderr lines."""
    command.add_argument("--log-format", choices=("json", "text"), default="json",
                         help="stderr log lines: one JSON object each (default) or plain text")


def announce(line: str) -> None:
    """A daemon's status line (``listening on ...``, ``stopped``) on stdout, at once: scripts wait for it."""
    print(line, flush=True)


Failures = Mapping[type[Exception] | tuple[type[Exception], ...], ExitCode]


def serve_daemon(run: Callable[[Callable[[str], None]], int], log_format: str, failures: Failures) -> int:
    """A daemon's ``serve`` command: logging as ``--log-format`` says, ``run`` (the daemon's
    foreground loop) announcing its status lines, and each failure ``failures`` names reported
    as one line that exits with its code."""
    configure_logging(log_format)
    kinds = tuple(kind for group in failures for kind in (group if isinstance(group, tuple) else (group,)))
    try:
        return run(announce)
    except kinds as exc:
        code = next(code for group, code in failures.items() if isinstance(exc, group))
        raise CliError(str(exc), code) from None
