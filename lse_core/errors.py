"""Errors that front ends turn into one-line messages instead of tracebacks."""


class BadInput(Exception):
    """A config, file or model the user named is unusable (CLI exit code 2)."""


class Cancelled(Exception):
    """The run was asked to stop; finished frames are kept."""


def shorten(text: str, limit: int = 80) -> str:
    """Text from the user for a message, cut in the middle past ``limit`` characters so
    that no input, however long, floods the screen or the log."""
    if len(text) <= limit:
        return text
    keep = (limit - 1) // 2
    return f"{text[:keep]}…{text[-keep:]}"


def clip(value: object, limit: int = 80) -> str:
    """A user's value for a message, as its (shortened) repr."""
    return shorten(repr(value), limit)
