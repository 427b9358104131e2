"""The one exception type the CLI turns into a clean message and a non-zero exit."""

from __future__ import annotations


class MlfolioError(Exception):
    """A problem the user can fix: the message says what went wrong and what to do about it."""


class Interrupted(MlfolioError):
    """The user stopped a run (Ctrl-C); the message says what was cleaned up or how to resume."""

    exit_code = 130
