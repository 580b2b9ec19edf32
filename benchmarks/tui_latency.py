"""How long the TUI keeps a user waiting: to its first screen, for a key, to quit.

Runs ``lse tui --model tiny --graphics halfcell`` in a pseudo-terminal, as a
user's terminal would.

* Time to first screen: from starting the process until the home screen's
  footer is on the terminal, over ``--launches`` launches (the first launch on a
  machine also compiles Python files: it is reported apart). Each launch then
  quits with ``q``; the time until the process is gone is the quit time.
* Key latency (issue 4): starts a single inference at a size where one
  denoising step takes well over 100 ms, and while it generates presses ctrl+p
  (the command palette) again and again. Latency is the time from writing the
  key to the terminal until the palette's text arrives on the terminal's output,
  so it covers input parsing, the app's event loop and rendering. The same is
  measured on the idle home screen first, for comparison.
* Quit during the run: ctrl+q while it generates, until the process is gone
  (the run stops within one step).

    python benchmarks/tui_latency.py [--size 512] [--steps 30] [--samples 15]
                                     [--launches 5] [--torch-threads N]
"""

from __future__ import annotations

import argparse
import fcntl
import os
import pty
import re
import shutil
import statistics
import struct
import sys
import tempfile
import termios
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PALETTE_TEXT = b"Search for commands"
CTRL_P, CTRL_Q, CTRL_R, ESCAPE = b"\x10", b"\x11", b"\x12", b"\x1b"
FIRST_SCREEN = b"Open form"  # the home screen's footer, drawn with the rest of it
CONFIG = """model_identifier: txt2img
exp_identifier: single-inference
model_id: tiny
prompt: a lighthouse at dusk|blurry
height: {size}
width: {size}
diffusion_steps: {steps}
output_path: sessions
"""
STEP = re.compile(rb"step (\d+)/(\d+)")
# Colour and cursor sequences split a text wherever its style changes (the
# cursor cell, for one), so text is searched for with them taken out.
ESCAPES = re.compile(rb"\x1b\[[0-9;?<>=]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")


class Terminal:
    """The app in a pseudo-terminal, its output collected by a reader thread."""

    def __init__(self, argv: list[str], cwd: str, env: dict[str, str],
                 rows: int = 30, cols: int = 100) -> None:
        pid, fd = pty.fork()
        if pid == 0:  # the child: becomes the app
            fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
            os.chdir(cwd)
            os.execvpe(argv[0], argv, {**os.environ, "TERM": "xterm-256color", **env})
        self.pid, self.fd = pid, fd
        self.output = bytearray()
        # The reader thread wakes waiters on new output: the benchmark must not
        # take CPU from the app it measures by polling.
        self.arrived = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.fd, 65536)
            except OSError:
                return
            if not data:
                return
            with self.arrived:
                self.output += data
                self.arrived.notify_all()

    def mark(self) -> int:
        with self.arrived:
            return len(self.output)

    def since(self, mark: int) -> bytes:
        """The text written after ``mark``, without escape sequences."""
        with self.arrived:
            return ESCAPES.sub(b"", bytes(self.output[mark:]))

    def wait_for(self, text: bytes | re.Pattern[bytes], mark: int, timeout: float = 120.0) -> float:
        """Seconds on the monotonic clock when ``text`` appeared after ``mark``."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            with self.arrived:
                size = len(self.output)
                raw = bytes(self.output[mark:])
            seen = ESCAPES.sub(b"", raw)
            if text.search(seen) if isinstance(text, re.Pattern) else text in seen:
                return time.monotonic()
            with self.arrived:
                if len(self.output) == size:
                    self.arrived.wait(timeout=left)
        raise TimeoutError(f"no {text!r} on the terminal within {timeout:.0f}s")

    def keys(self, *keys: bytes | str) -> None:
        """One key per write, a little apart, as typed."""
        for key in keys:
            for part in (key.encode() if isinstance(key, str) else [key]):
                os.write(self.fd, bytes([part]) if isinstance(part, int) else part)
                time.sleep(0.03)

    def exited(self, timeout: float = 60.0) -> float:
        """Seconds on the monotonic clock when the app's process was gone."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, _ = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.pid = 0
                return time.monotonic()
            time.sleep(0.005)
        raise TimeoutError(f"the app was still running {timeout:.0f}s after quitting")

    def close(self) -> None:
        if not self.pid:
            return
        try:
            os.kill(self.pid, 15)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass


def app_argv() -> list[str]:
    return [sys.executable, str(ROOT / "lse_tui.py"), "tui", "--model", "tiny",
            "--graphics", "halfcell"]


def launch_and_quit(env: dict[str, str]) -> tuple[float, float]:
    """(seconds to the first screen, seconds from q to the process gone), in a fresh folder."""
    workdir = tempfile.mkdtemp(prefix="lse-latency-")
    started = time.monotonic()
    term = Terminal(app_argv(), cwd=workdir, env=env)
    try:
        shown = term.wait_for(FIRST_SCREEN, 0, timeout=120)
        time.sleep(1.0)  # the home screen settles (recent sessions, the device)
        quit_at = time.monotonic()
        os.write(term.fd, b"q")
        gone = term.exited()
    finally:
        term.close()
        shutil.rmtree(workdir, ignore_errors=True)
    return shown - started, gone - quit_at


def palette_latency(term: Terminal) -> float | None:
    """Open the command palette, time it on screen, close it again; None: it did not
    open within 30 s (the sample is counted as lost)."""
    mark = term.mark()
    sent = time.monotonic()
    os.write(term.fd, CTRL_P)
    try:
        shown = term.wait_for(PALETTE_TEXT, mark, timeout=30)
    except TimeoutError:
        shown = None
    term.keys(ESCAPE)
    # The palette closes; the next sample starts from the screen below. An escape that
    # a busy app reads together with the next key is taken as alt+key: wait well past
    # Textual's escape delay.
    time.sleep(1.5)
    return None if shown is None else shown - sent


def generating_step(term: Terminal, mark: int) -> int:
    steps = STEP.findall(term.since(mark))
    return int(steps[-1][0]) if steps else 0


def summary(name: str, samples: list[float | None]) -> str:
    values = [v for v in samples if v is not None]
    lost = len(samples) - len(values)
    if not values:
        return f"{name:<24} every sample lost"
    ms = sorted(v * 1000 for v in values)
    p90 = ms[min(len(ms) - 1, round(0.9 * (len(ms) - 1)))]
    return (f"{name:<24} n={len(ms):<3} median {statistics.median(ms):6.1f} ms   "
            f"p90 {p90:6.1f} ms   max {ms[-1]:6.1f} ms" + (f"   ({lost} lost)" if lost else ""))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512, help="height and width of the frames")
    parser.add_argument("--steps", type=int, default=30, help="denoising steps per frame")
    parser.add_argument("--samples", type=int, default=15, help="key presses to time")
    parser.add_argument("--launches", type=int, default=5,
                        help="launches timed to the first screen (after one untimed)")
    parser.add_argument("--torch-threads", type=int,
                        help="OMP_NUM_THREADS for the app (default: torch's own choice)")
    args = parser.parse_args()
    env = {"OMP_NUM_THREADS": str(args.torch_threads)} if args.torch_threads else {}

    first_launch = launch_and_quit(env)
    launches = [launch_and_quit(env) for _ in range(args.launches)]

    workdir = tempfile.mkdtemp(prefix="lse-latency-")
    term = Terminal(app_argv(), cwd=workdir, env=env)
    try:
        term.wait_for(FIRST_SCREEN, 0, timeout=60)
        time.sleep(1.0)  # the home screen settles (status line, recent sessions)
        idle = [palette_latency(term) for _ in range(args.samples)]

        # Home → load a config into the form → run: a typed path, the shortest way there.
        config = Path(workdir) / "latency.yaml"
        config.write_text(CONFIG.format(size=args.size, steps=args.steps))
        term.keys(b"l")
        term.wait_for(b"Load a YAML config", 0, timeout=30)
        term.keys(str(config), b"\r")
        term.wait_for(b"Save YAML", 0, timeout=30)
        time.sleep(0.5)
        run_mark = term.mark()
        term.keys(CTRL_R)
        term.wait_for(STEP, run_mark, timeout=120)
        started = time.monotonic()
        first_step = generating_step(term, run_mark)

        busy = []
        for _ in range(args.samples):
            busy.append(palette_latency(term))
        last_step = generating_step(term, run_mark)
        seconds_per_step = (time.monotonic() - started) / max(1, last_step - first_step)
        if last_step >= args.steps:
            print("warning: the run may have ended during the samples; raise --steps")
        quit_at = time.monotonic()
        os.write(term.fd, CTRL_Q)
        quit_running = term.exited() - quit_at
    finally:
        term.close()
        shutil.rmtree(workdir, ignore_errors=True)

    threads = args.torch_threads or "default"
    print(f"tiny model, {args.size}x{args.size}, {args.steps} steps, torch threads {threads}, "
          f"~{seconds_per_step * 1000:.0f} ms per denoising step "
          f"(steps {first_step}→{last_step} while measuring)")
    print(f"first launch: first screen {first_launch[0]:.2f} s, quit {first_launch[1]:.2f} s")
    print(summary("first screen", [shown for shown, _ in launches]))
    print(summary("quit at home", [gone for _, gone in launches]))
    print(f"quit while generating     {quit_running * 1000:6.1f} ms")
    print(summary("idle home screen", idle))
    print(summary("during generation", busy))
    print("samples (ms), idle:", " ".join("lost" if v is None else str(round(v * 1000))
                                          for v in idle))
    print("samples (ms), generating:", " ".join("lost" if v is None else str(round(v * 1000))
                                                for v in busy))
    return 0


if __name__ == "__main__":
    sys.exit(main())
