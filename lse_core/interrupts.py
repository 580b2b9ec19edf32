"""Ctrl-C and SIGTERM in the headless commands.

While a run renders, the first signal asks it to stop after the denoising step in
hand (the session is marked interrupted); a second one ends the process at once.
At any other time (start-up, imports, model loading, an export) there is nothing
worth waiting for, and the first signal ends the process at once.

Ending at once is safe because every file lse keeps was published whole (written
to a temporary name, flushed, renamed): a session stopped this way resumes as one
stopped cleanly would, which is what the kill tests check. Only the temporary
files of writes still in progress are removed first, and the terminal is restored.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator, NoReturn

from .files import remove_unpublished


@dataclass
class _Handling:
    """The process's signal handling (one per process, as signal handlers are)."""

    first: Callable[[], None] | None = None  # a first signal's action (None: exit now)
    signals: int = 0
    farewell: str = "interrupted"
    cleanups: list[Callable[[], None]] = field(default_factory=list)


_handling = _Handling()


SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def handled() -> Iterator[None]:
    """SIGINT and SIGTERM handled as above within the block (``lse``'s whole command);
    the handlers from before come back after it. Only the main thread can set signal
    handlers: a command called from another thread (a test) keeps the ones there are."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = {sig: signal.getsignal(sig) for sig in SIGNALS}
    _handling.signals, _handling.farewell = 0, "interrupted"
    for sig in SIGNALS:
        signal.signal(sig, _on_signal)
    try:
        yield
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


@contextmanager
def python_defaults() -> Iterator[None]:
    """Python's own handling within the block (the TUI reads Ctrl-C as a key)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = {sig: signal.getsignal(sig) for sig in SIGNALS}
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        yield
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


def _on_signal(signum: int, frame: object) -> None:
    _handling.signals += 1
    first = _handling.first
    if first is None or _handling.signals > 1:
        exit_now()
    first()


@contextmanager
def first_signal_calls(action: Callable[[], None]) -> Iterator[None]:
    """Within the block, a first signal calls ``action`` (from the signal handler: it
    must only hand the request on) instead of ending the process."""
    _handling.first = action
    try:
        yield
    finally:
        _handling.first = None


def say_on_exit(text: str) -> None:
    """What the process says (after ``lse: ``) if a signal ends it at once from now on."""
    _handling.farewell = text


@contextmanager
def cleanup_on_exit(cleanup: Callable[[], None]) -> Iterator[None]:
    """Within the block, an immediate exit calls ``cleanup`` first (e.g. to give the
    terminal its cursor back)."""
    _handling.cleanups.append(cleanup)
    try:
        yield
    finally:
        _handling.cleanups.remove(cleanup)


def exit_now() -> NoReturn:
    """End the process with exit code 130, leaving no temporary file behind."""
    from .progress import EXIT_INTERRUPTED  # (progress imports this module)

    remove_unpublished()
    for cleanup in reversed(_handling.cleanups):
        try:
            cleanup()
        except Exception:  # the process ends either way; a cleanup must not stop that
            pass
    for stream, text in ((sys.stdout, ""), (sys.stderr, f"lse: {_handling.farewell}\n")):
        try:
            stream.write(text)
            stream.flush()
        except Exception:  # closed (`| head`), or a write to it was in progress
            pass
    os._exit(EXIT_INTERRUPTED)
