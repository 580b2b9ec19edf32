"""Errors that front ends turn into one-line messages instead of tracebacks, and the
one way any outside text (file and folder names, configs, prompts) is made safe to show."""

from __future__ import annotations


class BadInput(Exception):
    """A config, file or model the user named is unusable (CLI exit code 2).

    ``key`` is the config key at fault, when there is one: the TUI's form shows the
    message at that key's field."""

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


class RenderFault(Exception):
    """Rendering went wrong in a way the user can fix (CLI exit code 1); the message is the
    whole line."""


class Cancelled(Exception):
    """The run was asked to stop; finished frames are kept."""


def printable(text: str) -> str:
    """Outside text as a terminal may show it: every character that is not printable
    (ESC, BEL, a line break, a bidi override …) is written as its escape (``\\x1b``),
    so no file name, config or prompt can move the cursor, retitle the window or
    clear the screen. Nothing is cut."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii")
                   for c in text)


def shorten(text: str, limit: int = 80) -> str:
    """Text from the user for a message: made printable and cut in the middle past
    ``limit`` characters, so that no input, however long or odd, floods the screen or
    the log or breaks the message's single line."""
    text = printable(text)
    if len(text) <= limit:
        return text
    keep = (limit - 1) // 2
    return f"{text[:keep]}…{text[-keep:]}"


def clip(value: object, limit: int = 80) -> str:
    """A user's value for a message, as its (shortened) repr."""
    return shorten(repr(value), limit)


def shown_path(path: object) -> str:
    """A path for a message: whole in any real case, escaped and bounded in any other."""
    return shorten(str(path), 300)


def one_line(text: str, limit: int = 300) -> str:
    """An unexpected error's text as the single line a front end shows."""
    return shorten(" ".join(text.split()), limit)
