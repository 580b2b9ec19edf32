"""Errors that front ends turn into one-line messages instead of tracebacks."""


class BadInput(Exception):
    """A config, file or model the user named is unusable (CLI exit code 2)."""


class Cancelled(Exception):
    """The run was asked to stop; finished frames are kept."""
