"""`y` in the run view: the session path goes where the user can paste it from, and the
status line says where (inside tmux: tmux's own paste buffer too)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from lse_core.events import Loaded, Started
from screens.run_view import RunScreen
from test_tui_support import ScriptedRun, make_app, wait_until


async def press_y(tmp_path: Path) -> tuple[str, list[str], str | None]:
    """(the session's absolute path, what the app said, what it sent as OSC 52) after `y`
    mid-run, with the session given relative to the working folder, as lse gives it."""
    name = "2026-01-02_03-04-05_txt2img_single-inference"
    session = Path("sessions") / name
    app = make_app(Path("sessions"))
    said: list[str] = []
    app.notify = lambda message, **options: said.append(message)  # type: ignore[method-assign]
    async with app.run_test(size=(80, 24)) as pilot:
        run = ScriptedRun([Loaded("tiny", "cpu", "float32", 1.0), Started(session, 2, 0, 1, 2)])
        await app.push_screen(RunScreen(run, "single-inference · txt2img · tiny", "none"))
        await wait_until(pilot, lambda: app.screen.session_dir == session, "the session")
        await pilot.press("y")
        await wait_until(pilot, lambda: bool(said), "the status line")
    return str(tmp_path.resolve() / "sessions" / name), said, app.clipboard


async def test_y_outside_tmux_says_the_path_went_to_the_terminal(tmp_path: Path,
                                                                 monkeypatch) -> None:
    monkeypatch.delenv("TMUX", raising=False)
    monkeypatch.chdir(tmp_path)
    path, said, clipboard = await press_y(tmp_path)
    assert clipboard == path
    assert said == [f"{path}\nsent to the terminal's clipboard (OSC 52, where the terminal "
                    "allows it)"]


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
async def test_y_inside_tmux_puts_the_path_in_tmuxs_paste_buffer(tmp_path: Path,
                                                                 monkeypatch) -> None:
    socket = tmp_path / "tmux.sock"  # a server of this test's own, never the user's
    subprocess.run(["tmux", "-S", str(socket), "-f", "/dev/null", "new-session", "-d",
                    "sleep 120"], check=True)
    try:
        monkeypatch.setenv("TMUX", f"{socket},0,0")  # as tmux sets it for its panes
        monkeypatch.chdir(tmp_path)
        path, said, clipboard = await press_y(tmp_path)
        buffer = subprocess.run(["tmux", "-S", str(socket), "show-buffer"], capture_output=True,
                                text=True, check=True).stdout
    finally:
        subprocess.run(["tmux", "-S", str(socket), "kill-server"], capture_output=True)
    assert buffer == path == clipboard
    assert said[0].startswith(f"{path}\nin tmux's paste buffer (prefix ] pastes it); ")
