"""Text from folder names, file names, sessions and configs never reaches the terminal with
its control characters (a window retitled by ``ESC ] 0 ; … BEL``, a screen cleared by
``ESC [ 2 J``), in the CLI and in the TUI; the escaped text is shown instead."""

from __future__ import annotations

import json
import os
import pty
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from helpers import ROOT, only_session, run_cli, write_config
from lse_core.errors import printable
from lse_core.frames import FrameRecord
from lse_core.journal import frame_line
from screens.form import ExperimentForm
from screens.sessions import SessionsScreen
from test_tui_support import make_app, open_browser, type_into, wait_until

# A window title change, a screen clear, and Textual markup (shown as written, not bold).
HOSTILE = "x\x1b]0;PWNED\x07\x1b[2J[bold]y"
SHOWN = printable(HOSTILE)  # x\x1b]0;PWNED\x07\x1b[2J[bold]y, as visible characters
LSE = [sys.executable, "-m", "lse_core.cli"]
TINY = {"model_identifier": "txt2img", "exp_identifier": "single-inference", "model_id": "tiny",
        "prompt": "a fox", "height": 64, "width": 64, "diffusion_steps": 2, "rand_seed": 3}


def _clean(output: str) -> None:
    assert "\x1b" not in output and "\x07" not in output, repr(output)


def _no_hostile_sequence(output: str) -> None:
    """For a terminal's output, where lse's own colours are escape sequences too."""
    for sequence in ("\x1b]", "\x07", "\x1b[2J"):
        assert sequence not in output, repr(output)


@pytest.fixture(scope="module")
def stored(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("stored")
    config = write_config(root / "c.yaml", **TINY)
    assert run_cli("run", str(config), "--out", str(root / "s")) == 0
    return only_session(root / "s")


@pytest.fixture
def hostile_sessions(stored, tmp_path) -> Path:
    """A sessions folder whose one session has a hostile folder name and model name, and
    a frame label that is markup (the journal refuses file names that are not plain and
    labels that are not printable)."""
    session = Path(shutil.copytree(stored, tmp_path / "sessions" / f"session-{HOSTILE}"))
    manifest = json.loads((session / "session.json").read_text())
    manifest["model_id"] = f"model-{HOSTILE}"
    (session / "session.json").write_text(json.dumps(manifest))
    frame = next((session / "images").glob("*.png"))
    shutil.copyfile(frame, session / "images" / "frame-x.png")
    with open(session / "frames.jsonl", "ab") as journal:
        journal.write(frame_line(FrameRecord("frame-x", 99, "frame [bold]y PWNED", "image")))
    return session.parent


# the CLI ----------------------------------------------------------------------------------

def test_sessions_piped(hostile_sessions):
    done = subprocess.run([*LSE, "sessions", str(hostile_sessions)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    _clean(done.stdout + done.stderr)
    assert f"session-{SHOWN}" in done.stdout and f"model-{SHOWN}" in done.stdout


def test_sessions_as_json(hostile_sessions):
    done = subprocess.run([*LSE, "sessions", "--json", str(hostile_sessions)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    _clean(done.stdout)
    assert Path(json.loads(done.stdout)[0]["path"]).name == f"session-{HOSTILE}"


def _on_a_terminal(command: list[str]) -> str:
    """What ``command`` writes to a (pseudo) terminal."""
    main, child = pty.openpty()
    process = subprocess.Popen(command, cwd=ROOT, stdin=child, stdout=child, stderr=child,
                               env={**os.environ, "COLUMNS": "400", "LINES": "50"})
    os.close(child)
    output = b""
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:  # the child closed its side
            break
        if not chunk:
            break
        output += chunk
    os.close(main)
    assert process.wait(timeout=300) == 0, output
    return output.decode(errors="replace")


def test_sessions_table_on_a_terminal(hostile_sessions):
    output = _on_a_terminal([*LSE, "sessions", str(hostile_sessions)])
    _no_hostile_sequence(output)
    assert "PWNED" in output  # the table shows the session, escaped


@pytest.fixture
def hostile_embedding_config(tmp_path) -> Path:
    embedding = tmp_path / f"embedding-{HOSTILE}.safetensors"
    save_file({"prompt_embed": torch.zeros(2, 77, 1024)}, str(embedding))
    return write_config(tmp_path / "c.yaml", **TINY, load_prompt_embeds=str(embedding),
                        output_path=str(tmp_path / "s"))


def test_progress_lines_piped(hostile_embedding_config):
    done = subprocess.run([*LSE, "run", str(hostile_embedding_config)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    _clean(done.stdout + done.stderr)
    assert f"loaded {hostile_embedding_config.parent}/embedding-{SHOWN}" in done.stdout


def test_progress_on_a_terminal(hostile_embedding_config):
    output = _on_a_terminal([*LSE, "run", str(hostile_embedding_config)])
    _no_hostile_sequence(output)
    assert "PWNED" in output


# the TUI ----------------------------------------------------------------------------------

async def test_frame_names_in_the_sessions_browser(hostile_sessions):
    app = make_app(hostile_sessions)
    async with app.run_test(size=(160, 40)) as pilot:
        await open_browser(pilot)
        assert isinstance(app.screen, SessionsScreen)
        await wait_until(pilot, lambda: len(app.screen.frames) == 2, "the frames list")
        app.screen.query_one("#session-frames").highlighted = next(
            i for i, (record, _) in enumerate(app.screen.frames) if "PWNED" in record.label)
        await pilot.pause()
        screen = app.export_screenshot()
    _clean(screen)
    assert "PWNED" in screen and "[bold]y" in screen  # escaped, and not read as markup


async def test_a_prompt_from_a_stored_config_in_the_form(tmp_path):
    config = write_config(tmp_path / "hostile.yaml", **{**TINY, "prompt": f"a fox {HOSTILE}"})
    app = make_app(tmp_path / "sessions")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("l")
        await type_into(pilot, "#path", str(config))
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ExperimentForm), "the form")
        assert app.screen.rows["prompt"].get_text().startswith(f"a fox {SHOWN}")
        await pilot.pause()
        screen = app.export_screenshot()
    _clean(screen)
    assert "PWNED" in screen
