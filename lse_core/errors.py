"""Errors that front ends turn into one-line messages instead of tracebacks."""


class BadInput(Exception):
    """A config, file or model the user named is unusable (CLI exit code 2)."""


class RenderFault(Exception):
    """Rendering went wrong in a way the user can fix (CLI exit code 1); the message is the
    whole line."""


class Cancelled(Exception):
    """The run was asked to stop; finished frames are kept."""


def shorten(text: str, limit: int = 80) -> str:
    """Text from the user for a message: control characters escaped (some end a line)
    and cut in the middle past ``limit`` characters, so that no input, however long or
    odd, floods the screen or the log or breaks the message's single line."""
    if not text.isprintable():
        text = text.encode("unicode_escape").decode("ascii")
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
