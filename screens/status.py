"""The status line: model, device, dtype and memory in use."""

from __future__ import annotations

import functools
import json
import os
import resource
import subprocess
import sys
import threading

from textual.message import Message
from textual.widgets import Static

from lse_core.events import Loaded

REFRESH_S = 2.0
DEVICE_PROBE_TIMEOUT_S = 120.0


def memory_text(device: str | None) -> str:
    """Resident memory of this process, plus the GPU memory torch holds on CUDA."""
    try:
        with open("/proc/self/statm", encoding="ascii") as handle:
            rss = int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # peak, in KiB on Linux
    text = f"RAM {rss / 2**30:.1f} GiB"
    if device and device.startswith("cuda"):
        import torch

        text += f" · GPU {torch.cuda.memory_allocated(device) / 2**30:.1f} GiB"
    return text


# Run in a child Python: importing torch in the app's process would hold its GIL
# for seconds, and keys would wait for it.
DEVICE_PROBE = """\
import json
from lse_core.models import pick_device, pick_dtype
device = pick_device(None)
print(json.dumps([str(device), str(pick_dtype(None, device)).removeprefix("torch.")]))
"""
UNKNOWN_DEVICE = ("device unknown", "?")


@functools.cache
def default_device() -> tuple[str, str]:
    """Where a run goes unless told otherwise (the core's own choice): (device, dtype).
    Asked once per process (a child Python importing torch costs seconds of CPU)."""
    try:
        result = subprocess.run([sys.executable, "-c", DEVICE_PROBE], capture_output=True,
                                text=True, timeout=DEVICE_PROBE_TIMEOUT_S)
        device, dtype = json.loads(result.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.TimeoutExpired, ValueError, IndexError):
        return UNKNOWN_DEVICE
    return str(device), str(dtype)


class StatusLine(Static):
    """Shows the model of the last run, or the device a run would use.

    Finding the device imports torch (seconds, in a child process), so the line
    first says so and a daemon thread asks after the first paint: a Textual thread
    worker would run in the event loop's executor, which quitting waits for.
    """

    class DeviceFound(Message):
        def __init__(self, device: tuple[str, str]) -> None:
            super().__init__()
            self.device = device

    DEFAULT_CSS = """
    StatusLine {
        height: 1;
        background: $panel;
        color: $text-muted;
        padding: 0 1;
    }
    """

    def __init__(self, loaded: Loaded | None, model_hint: str | None,
                 id: str | None = None) -> None:
        super().__init__(id=id)
        self.loaded = loaded
        self.model_hint = model_hint
        self.device: tuple[str, str] | None = None

    def on_mount(self) -> None:
        self.refresh_status()
        self.set_interval(REFRESH_S, self.refresh_status)
        self.call_after_refresh(self._find_device)

    def _find_device(self) -> None:
        def find() -> None:
            self.post_message(self.DeviceFound(default_device()))

        threading.Thread(target=find, name="lse-find-device", daemon=True).start()

    def on_status_line_device_found(self, message: DeviceFound) -> None:
        self.device = message.device
        self.refresh_status()

    def refresh_status(self) -> None:
        # GPU memory is asked of torch only once a run has loaded it into this process.
        loaded_on = self.loaded.device if self.loaded is not None else None
        model = self.model_hint or "none loaded"
        if self.loaded is not None:
            head = f"model {self.loaded.model_id} · {self.loaded.device} · {self.loaded.dtype}"
        elif self.device is None:
            head = f"model {model} (not loaded) · finding the device…"
        else:
            head = f"model {model} (not loaded) · {self.device[0]} · {self.device[1]}"
        self.update(f"{head} · {memory_text(loaded_on)}")
