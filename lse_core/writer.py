"""Saving frames on a background thread, in order, while the next batch renders.

Encoding a 768×768 PNG and flushing it and its embedding to disk takes tens of
milliseconds a frame; done on the rendering thread, the GPU would wait for it.
"""

from __future__ import annotations

import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable


class OrderedWriter:
    """Runs submitted saves one at a time, in the order given, on one thread.

    At most ``max_pending`` saves wait at once (each holds a batch of images in
    memory), so a slow disk slows the rendering down instead of filling memory.
    A failed save (a full disk) is raised by the next ``submit`` or ``flush``.
    """

    def __init__(self, max_pending: int = 2) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lse-writer")
        self._slots = threading.BoundedSemaphore(max_pending)
        self._pending: deque[Future[None]] = deque()

    def submit(self, save: Callable[..., Any], *args: Any) -> None:
        self._raise_failure()
        self._slots.acquire()
        try:
            self._pending.append(self._pool.submit(self._run, save, args))
        except BaseException:
            self._slots.release()
            raise

    def _run(self, save: Callable[..., Any], args: tuple[Any, ...]) -> None:
        try:
            save(*args)
        finally:
            self._slots.release()

    def _raise_failure(self) -> None:
        while self._pending and self._pending[0].done():
            self._pending.popleft().result()

    def flush(self) -> None:
        """Wait until everything submitted is on disk (raising the first failure)."""
        while self._pending:
            self._pending.popleft().result()

    def close(self) -> None:
        """Finish what was submitted, even when the run is stopping: those frames are done."""
        try:
            self.flush()
        finally:
            self._pool.shutdown(wait=True)
