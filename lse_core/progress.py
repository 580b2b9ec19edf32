"""Headless progress: a live rich bar on a terminal, plain lines otherwise."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Callable, Iterator, TextIO

from . import interrupts
from .errors import printable

from .events import (
    Event,
    Failed,
    Finished,
    FrameReady,
    Interrupted,
    Loaded,
    MediaWritten,
    Notice,
    Started,
    Step,
    WaitingForChoice,
)

EXIT_DONE, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130
Reporter = Callable[[Event], "int | None"]


def final_code(event: Event) -> int | None:
    if isinstance(event, Finished):
        return EXIT_DONE
    if isinstance(event, Interrupted):
        return EXIT_INTERRUPTED
    if isinstance(event, Failed):
        return EXIT_BAD_INPUT if event.bad_input else EXIT_FAILED
    return None


def count(n: int, noun: str) -> str:
    """``1 frame``, ``2 frames``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def describe(event: Event) -> str | None:
    """The line a plain log shows for an event (None: not worth a line), printable: paths
    and messages may hold any character a file name or a config can."""
    line = _line(event)
    return printable(line) if line is not None else None


def _line(event: Event) -> str | None:
    if isinstance(event, Notice):
        return event.message
    if isinstance(event, Loaded):
        return f"model {event.model_id} on {event.device} ({event.dtype}) in {event.seconds:.1f}s"
    if isinstance(event, Started):
        planned = ("? frames" if event.frames_planned is None
                   else count(event.frames_planned, "frame"))
        ranks = f", {event.ranks} ranks" if event.ranks > 1 else ""
        return f"session {event.session_dir} ({planned}, batch {event.batch_size}{ranks})"
    if isinstance(event, FrameReady):
        source = " (already on disk)" if event.from_disk else ""
        return f"frame {event.index + 1}: {event.path}{source}"
    if isinstance(event, MediaWritten):
        return "wrote " + ", ".join(str(p) for p in event.paths)
    if isinstance(event, WaitingForChoice):
        return (f"generation {event.generation} ready: genes 0-{event.genes - 1}, "
                f"lineage of {count(len(event.lineage), 'node')}")
    if isinstance(event, Finished):
        return f"done: {count(event.frames_done, 'frame')} in {event.session_dir}"
    if isinstance(event, Interrupted):
        where = f"; resume with: lse resume {event.session_dir}" if event.session_dir else ""
        return f"interrupted after {count(event.frames_done, 'frame')}{where}"
    if isinstance(event, Failed):
        return f"lse: {event.message}"
    return None


@contextmanager
def console_reporter(live: bool | None = None) -> Iterator[Reporter]:
    live = sys.stdout.isatty() if live is None else live
    if not live:
        yield _plain
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), TimeRemainingColumn())
    tasks: dict[str, int] = {}

    def report(event: Event) -> int | None:
        if isinstance(event, Started):
            tasks["frames"] = progress.add_task("frames", total=event.frames_planned,
                                                completed=event.frames_done)
            tasks["steps"] = progress.add_task("steps", total=event.steps_per_frame)
        elif isinstance(event, Step) and "steps" in tasks:
            progress.update(tasks["steps"], completed=event.step, total=event.total)
        elif isinstance(event, FrameReady) and "frames" in tasks:
            progress.update(tasks["frames"], completed=event.index + 1)
        line = describe(event)
        if line and not isinstance(event, (FrameReady, Step)):
            progress.console.print(line, style="red" if isinstance(event, Failed) else None,
                                   markup=False)
        return final_code(event)

    # An immediate exit (a second Ctrl-C) must give the terminal its cursor back.
    with progress, interrupts.cleanup_on_exit(progress.stop):
        yield report


def _plain(event: Event) -> int | None:
    line = describe(event)
    if line:
        stream = sys.stderr if isinstance(event, Failed) else sys.stdout
        print(line, file=stream, flush=True)
    return final_code(event)


def plain_reporter(stream: TextIO, finals_only: bool = False) -> Reporter:
    """Lines on ``stream``; only the last one (done, interrupted, failed) if ``finals_only``
    (stdout was closed: stderr still says how the run ended and how to resume it)."""

    def report(event: Event) -> int | None:
        code = final_code(event)
        line = describe(event)
        if line and (code is not None or not finals_only):
            print(line, file=stream, flush=True)
        return code

    return report
