"""The error a command reports as one line, with the exit code the vocabulary gives it."""

from __future__ import annotations

from blindmatch.vocabulary import BlindmatchError, ExitCode, Reason

_REASON_FOR_EXIT = {ExitCode.USAGE: Reason.BAD_INPUT, ExitCode.FAILURE: Reason.FAILED}


class CliError(BlindmatchError):
    """An error to report to the user as one line; ``exit_code`` is one of ``ExitCode``."""

    def __init__(self, message: str, exit_code: ExitCode = ExitCode.FAILURE) -> None:
        super().__init__(message, _REASON_FOR_EXIT.get(exit_code))
        self._exit_code = exit_code

    @property
    def exit_code(self) -> ExitCode:
        return self._exit_code
