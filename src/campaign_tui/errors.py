"""Errors that end a command with one clear line and a sysexits code."""

from __future__ import annotations

EX_USAGE = 64
EX_NOINPUT = 66
EX_SOFTWARE = 70
EX_CANTCREAT = 73
EX_CONFIG = 78


class UsageError(Exception):
    """Bad input from the user: shown as one line on stderr, exit ``code``."""

    def __init__(self, message: str, code: int = EX_USAGE):
        super().__init__(message)
        self.message = message
        self.code = code
