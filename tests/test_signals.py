"""Ctrl-C, SIGTERM and closed pipes, sent for real to a real `lse` process: no traceback,
exit 130, nothing half-written left, and a session that resumes.

Each moment is pinned by tests/stall_hook.py (a marker line on stderr, then the stage
blocks), so the tests wait for a line, never for a guessed time."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import ROOT, only_session, run_cli, write_config

HOOK = [sys.executable, str(ROOT / "tests" / "stall_hook.py")]
LSE = [sys.executable, "-m", "lse_core.cli"]
# Three 64x64 frames, rendered one at a time.
SINGLE = {"model_identifier": "txt2img", "exp_identifier": "single-inference", "model_id": "tiny",
          "prompt": "a red circle", "height": 64, "width": 64, "diffusion_steps": 2,
          "rand_seed": 5, "images_per_prompt": 3, "batch_size": 1}
# How long a stop "at once" may take on a loaded 2-core machine (the process is
# scheduled, handles the signal, removes temporaries and exits).
AT_ONCE_S = 5


def _start(command: list[str], **kwargs) -> subprocess.Popen:
    return subprocess.Popen(command, cwd=ROOT, stdout=kwargs.pop("stdout", subprocess.DEVNULL),
                            stderr=subprocess.PIPE, **kwargs)


def _wait_for_line(process: subprocess.Popen, marker: str, timeout: float = 300) -> list[str]:
    """stderr lines up to and including the first one that holds ``marker``."""
    deadline = time.monotonic() + timeout
    lines = []
    while time.monotonic() < deadline:
        line = process.stderr.readline().decode()
        if not line and process.poll() is not None:
            raise AssertionError(f"ended before {marker!r}: {''.join(lines)}")
        lines.append(line)
        if marker in line:
            return lines
    raise AssertionError(f"no {marker!r} within {timeout}s")


def _ended_quietly(process: subprocess.Popen, timeout: float) -> str:
    """Exit code 130 within ``timeout`` s, no traceback; returns the rest of stderr."""
    code = process.wait(timeout=timeout)
    err = process.stderr.read().decode()
    assert code == 130, err
    assert "Traceback" not in err and "Exception ignored" not in err, err
    return err


def _temporaries(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if ".tmp" in p.name]


def _manifest(session: Path) -> dict:
    return json.loads((session / "session.json").read_text())


def test_sigint_while_torch_imports_exits_130_without_a_traceback(tmp_path):
    config = write_config(tmp_path / "c.yaml", **SINGLE)
    process = _start([*HOOK, "import-torch", "run", str(config), "--out", str(tmp_path / "s")])
    err = _ended_quietly(process, timeout=120)
    assert err.splitlines() == ["lse: interrupted"]
    assert not (tmp_path / "s").exists() or not any((tmp_path / "s").iterdir())


def test_sigterm_during_model_load_stops_at_once(tmp_path):
    config = write_config(tmp_path / "c.yaml", **SINGLE)
    process = _start([*HOOK, "load", "run", str(config), "--out", str(tmp_path / "s")])
    _wait_for_line(process, "stall-hook: load")
    sent = time.monotonic()
    process.send_signal(signal.SIGTERM)
    err = _ended_quietly(process, timeout=AT_ONCE_S)
    print(f"SIGTERM during model load: exit after {time.monotonic() - sent:.2f}s")
    assert err.splitlines() == ["lse: interrupted"]
    assert not any((tmp_path / "s").iterdir())  # no session was begun


@pytest.mark.parametrize("first", [signal.SIGINT, signal.SIGTERM])
def test_a_second_signal_inside_a_long_step_exits_at_once_and_the_session_resumes(
        first, tmp_path):
    config = write_config(tmp_path / "c.yaml", **SINGLE)
    process = _start([*HOOK, "step", "run", str(config), "--out", str(tmp_path / "s")])
    _wait_for_line(process, "stall-hook: step")
    process.send_signal(first)
    _wait_for_line(process, "stopping after this step")
    process.send_signal(signal.SIGTERM if first == signal.SIGINT else signal.SIGINT)
    err = _ended_quietly(process, timeout=AT_ONCE_S)
    session = only_session(tmp_path / "s")
    assert f"lse: stopped at once; resume with: lse resume {session}" in err
    assert (session / "images" / "output-0_diffstep-2.png").is_file()
    assert not _temporaries(session)

    assert run_cli("resume", str(session)) == 0
    assert _manifest(session)["state"] == "done"
    assert run_cli("run", str(config), "--out", str(tmp_path / "whole")) == 0
    whole = only_session(tmp_path / "whole")
    for name in (f"output-{i}_diffstep-2.png" for i in range(3)):
        assert (session / "images" / name).read_bytes() == (whole / "images" / name).read_bytes()


def test_a_closed_stdout_stops_the_run_resumably(tmp_path):
    """`lse run … | head -1`: the reader takes one line and goes."""
    config = write_config(tmp_path / "c.yaml", **{**SINGLE, "images_per_prompt": 8})
    process = _start([*LSE, "run", str(config), "--out", str(tmp_path / "s")],
                     stdout=subprocess.PIPE)
    assert process.stdout.readline()
    process.stdout.close()
    err = _ended_quietly(process, timeout=300)
    assert "BrokenPipe" not in err
    session = only_session(tmp_path / "s")
    assert f"resume with: lse resume {session}" in err
    assert _manifest(session)["state"] == "interrupted"
    assert run_cli("resume", str(session)) == 0
    assert len(list((session / "images").glob("*.png"))) == 8


@pytest.fixture(scope="module")
def exported_session(tmp_path_factory) -> Path:
    """A finished interpolation (7 frames, a GIF and an MP4)."""
    root = tmp_path_factory.mktemp("exported")
    config = write_config(root / "c.yaml", **{**SINGLE, "exp_identifier": "interpolation",
                                              "inter_prompts": ["a fox", "a bird"],
                                              "inter_noises": [3, 4], "batch_size": 4})
    assert run_cli("run", str(config), "--out", str(root / "s")) == 0
    return only_session(root / "s")


@pytest.mark.parametrize("name", ["INT", "TERM"])
def test_a_signal_during_export_leaves_the_old_gif_and_no_temporary(name, exported_session,
                                                                   tmp_path):
    session = Path(shutil.copytree(exported_session, tmp_path / exported_session.name))
    gif = session / "gifs" / "output-0.gif"
    before = gif.read_bytes()
    process = _start([*HOOK, f"gif-{name}", "export", str(session), "--gif", "--fps", "5"])
    err = _ended_quietly(process, timeout=120)
    assert err.splitlines() == ["lse: interrupted"]
    assert gif.read_bytes() == before
    assert not _temporaries(session)


def _closed_pipe() -> int:
    """The write end of a pipe whose reader is gone, as `| head` leaves it."""
    read, write = os.pipe()
    os.close(read)
    return write


@pytest.mark.parametrize("args", [[], ["--json"]])
def test_sessions_into_a_closed_pipe_end_quietly(args, exported_session):
    write = _closed_pipe()
    try:
        done = subprocess.run([*LSE, "sessions", str(exported_session.parent), *args], cwd=ROOT,
                              stdout=write, stderr=subprocess.PIPE, timeout=120)
    finally:
        os.close(write)
    assert done.returncode == 0 and done.stderr == b""
