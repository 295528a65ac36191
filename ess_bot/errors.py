"""Errors that stop the bot with one French sentence (exit code 2), never a traceback."""

from __future__ import annotations


class FatalError(Exception):
    """Retrying will not help (unreachable database or homeserver at start, refused credentials…).
    The message is French and names what and where."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message
