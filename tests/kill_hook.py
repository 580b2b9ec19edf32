"""Run ``lse`` and SIGKILL it at one chosen moment, as a power cut or ``kill -9`` would.

    python kill_hook.py WHAT N LSE-ARGS...

WHAT is ``creation`` (just before a new session folder is renamed into place),
``png`` or ``gif`` (just before the N-th PNG or GIF is published, its temporary
file complete on disk), or ``png-published`` (just after the N-th PNG is renamed
into place, before its checksum reaches the journal). Only ``os.rename``/``os.replace``
are wrapped; everything else is the real program. Under torchrun, ``KILL_RANK``
names the one rank to kill.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Callable

from lse_core.cli import main


def _kill_on(real: Callable, nth: int, matches: Callable[[Path, Path], bool],
             after: bool = False) -> Callable:
    seen = 0

    def wrapper(src, dst, *args, **kwargs):
        nonlocal seen
        hit = matches(Path(src), Path(dst))
        if hit:
            seen += 1
        if hit and seen == nth and not after:
            os.kill(os.getpid(), signal.SIGKILL)
        result = real(src, dst, *args, **kwargs)
        if hit and seen == nth:
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    return wrapper


if __name__ == "__main__":
    what, nth, args = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    if os.environ.get("RANK", "0") != os.environ.get("KILL_RANK", os.environ.get("RANK", "0")):
        sys.exit(main(args))
    if what == "creation":
        os.rename = _kill_on(os.rename, nth, lambda src, dst: src.name.startswith(".creating-"))
    elif what == "png-published":
        os.replace = _kill_on(os.replace, nth, lambda src, dst: dst.suffix == ".png", after=True)
    else:
        os.replace = _kill_on(os.replace, nth, lambda src, dst: dst.suffix == f".{what}")
    sys.exit(main(args))
