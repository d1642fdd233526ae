"""How a role's command group is declared, the same way for the holder, issuer and witness.

``blindmatch ROLE SUBCOMMAND``: each subcommand has its help line, its description, the
function it runs and, for most, ``--config ROLE_TOML``; ``RoleCommands.add`` declares all
four at once so that no group spells them differently.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

Command = Callable[[argparse.Namespace], int]


class RoleCommands:
    """The ``blindmatch ROLE`` group: its subcommands, each with the role's ``--config`` file."""

    def __init__(self, subparsers: argparse._SubParsersAction[argparse.ArgumentParser], role: str, help_text: str) -> None:
        self.role = role
        parser = subparsers.add_parser(role, help=help_text)
        self.commands = parser.add_subparsers(dest=f"{role}_command", metavar="SUBCOMMAND", required=True)

    def add(self, name: str, func: Command, help_text: str, description: str, *,
            config: bool = True) -> argparse.ArgumentParser:
        """Declare ``blindmatch ROLE NAME``; the caller adds its own arguments to the parser returned."""
        command = self.commands.add_parser(name, help=help_text, description=description)
        if config:
            command.add_argument("--config", required=True, type=Path, metavar=f"{self.role.upper()}_TOML",
                                 help=f"the {self.role}'s configuration file")
        command.set_defaults(func=func)
        return command


def announce(line: str) -> None:
    """A daemon's status line (``listening on ...``, ``stopped``) on stdout, at once: scripts wait for it."""
    print(line, flush=True)
