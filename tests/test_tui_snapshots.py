"""SVG snapshots of the main screens at 80x24 with the half-cell renderer forced.

Everything that would change between runs is fixed: the working folder (paths
in the UI are relative), the time zone, the memory and device of the status
line, the terminal cell size, and the run view is fed a fixed list of core
events with a fixed clock. Update with ``pytest --snapshot-update``.
"""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path

import pytest
from PIL import Image
from textual.pilot import Pilot
from textual_image._terminal import CellSize, get_cell_size

from lse_core.events import (Event, FrameReady, GenerationReady, Loaded, Notice, Started,
                             Step, WaitingForChoice)
from lse_core.choices import HELP
from lse_core.frames import FrameRecord
from lse_core.journal import frame_line
from screens import status
from screens.run_view import RunScreen
from test_tui_support import (ScriptedRun, grid_ready, make_app, open_browser, preview_decoded,
                              steady_cursors, table_measured, type_into, wait_until)

SESSIONS = Path("sessions")
STAMP = 1767323045.0  # 2026-01-02 03:04:05 UTC


@pytest.fixture(autouse=True)
def fixed_world(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    monkeypatch.setattr(status, "memory_text", lambda device: "RAM 1.0 GiB")
    monkeypatch.setattr(status, "default_device", lambda: ("cpu", "float32"))
    # textual-image sizes images from the terminal's cell size, which differs
    # under `pytest -s` in a real terminal; its documented fallback is 10x20.
    monkeypatch.setattr(get_cell_size, "_result", CellSize(10, 20), raising=False)
    yield
    monkeypatch.undo()
    time.tzset()


def picture(shade: int) -> Image.Image:
    """A small deterministic colour picture standing in for a frame."""
    ramp = Image.linear_gradient("L").resize((64, 64))
    return Image.merge("RGB", (ramp, ramp.rotate(90), Image.new("L", (64, 64), shade)))


def saved_session(name: str, state: str, frames: int, planned: int, updated: float) -> Path:
    path = SESSIONS / name
    kind, experiment = name.split("_")[2:4]
    (path / "images").mkdir(parents=True)
    (path / "configs").mkdir()
    records = [FrameRecord(f"output-{i}_diffstep-3", i, f"image {i}", "image") for i in range(frames)]
    for i, record in enumerate(records):
        picture(60 * i).save(path / "images" / f"{record.name}.png")
    (path / "frames.jsonl").write_bytes(b"".join(frame_line(r) for r in records))
    (path / "configs" / "config.yaml").write_text(
        f"model_identifier: {kind}\nexp_identifier: {experiment}\nprompt: a fox\n")
    (path / "session.json").write_text(json.dumps({
        "model_identifier": kind, "exp_identifier": experiment, "model_id": "tiny",
        "state": state, "frames_done": frames, "frames_planned": planned, "updated": updated,
        "batch_size": 2}))
    return path


def two_sessions() -> None:
    saved_session("2026-01-02_03-00-00_txt2img_single-inference", "done", 2, 2, STAMP)
    saved_session("2026-01-02_02-00-00_img2img_random-walk", "interrupted", 3, 11, STAMP - 3600)


async def sessions_listed(pilot: Pilot) -> None:
    """The home screen's recent sessions and the status line's device are in."""
    screen = pilot.app.screen
    await wait_until(pilot, lambda: table_measured(screen.query_one("#recent"), 2)
                     and screen.query_one("#status").device is not None, "the recent sessions")


def test_home(snap_compare) -> None:
    two_sessions()
    assert snap_compare(make_app(SESSIONS), terminal_size=(80, 24), run_before=sessions_listed)


def test_form_with_a_validation_error(snap_compare) -> None:
    async def bad_steps(pilot: Pilot) -> None:
        await pilot.press("enter")
        await type_into(pilot, "#edit-prompt", "a lighthouse at dusk")
        await type_into(pilot, "#edit-height", "64")
        await type_into(pilot, "#edit-width", "64")
        await type_into(pilot, "#edit-diffusion_steps", "0")
        await pilot.press("ctrl+r")
        steady_cursors(pilot.app)

    assert snap_compare(make_app(SESSIONS), terminal_size=(80, 24), run_before=bad_steps)


def test_form_switches_and_the_field_being_edited(snap_compare) -> None:
    async def advanced(pilot: Pilot) -> None:
        await pilot.press("enter")
        form = pilot.app.screen
        form.query_one("#advanced").collapsed = False
        form.query_one("#edit-vae_slicing").value = True
        form.query_one("#edit-att_slicing").focus()
        await pilot.pause()
        form.query_one("#form").scroll_end(animate=False)
        await pilot.pause()
        steady_cursors(pilot.app)

    assert snap_compare(make_app(SESSIONS), terminal_size=(80, 24), run_before=advanced)


def mid_run_script() -> list[Event]:
    session = SESSIONS / "2026-01-02_03-04-05_txt2img_single-inference"
    batch = ("output-0_diffstep-3", "output-1_diffstep-3")
    steps = [Step(batch, s, 3) for s in (1, 2, 3)]
    frames = [FrameReady(i, FrameRecord(name, i, f"image {i}", "image"),
                         session / "images" / f"{name}.png", picture(60 * i))
              for i, name in enumerate(batch)]
    return [Loaded("tiny", "cpu", "float32", 2.5), Notice("xformers unavailable; using SDPA"),
            Started(session, 4, 0, 2, 3), *steps, *frames,
            Step(("output-2_diffstep-3", "output-3_diffstep-3"), 1, 3)]


def test_run_view_mid_run(snap_compare) -> None:
    ticks = itertools.count(0.0, 0.5)

    async def mid_run(pilot: Pilot) -> None:
        screen = RunScreen(ScriptedRun(mid_run_script()), "single-inference · txt2img · tiny",
                           "halfcell", clock=lambda: next(ticks))
        await pilot.app.push_screen(screen)
        progress = screen.progress
        await wait_until(pilot, lambda: progress.frames_done == 2 and progress.step == 1,
                         "the scripted events")

    assert snap_compare(make_app(SESSIONS), terminal_size=(80, 24), run_before=mid_run)


def generation_script() -> list[Event]:
    """Diffevolution's second generation (from node 1) waiting for a choice, on disk in cwd."""
    images = SESSIONS / "2026-01-02_03-04-05_txt2img_diffevolution" / "images"
    images.mkdir(parents=True)
    names = tuple(f"difevostep-2_parent-3_gene-{i}" for i in range(4))
    paths = tuple(images / f"{name}.png" for name in names)
    for i, path in enumerate(paths):
        picture(60 * i).save(path)
    lineage = ({"id": 0, "name": "difevostep-start", "parent": None, "generation": 0},
               {"id": 1, "name": "difevostep-1_parent-start_gene-3", "parent": 0, "generation": 1})
    return [Loaded("tiny", "cpu", "float32", 2.5), Started(images.parent, None, 9, 4, 2),
            GenerationReady(2, names, paths), WaitingForChoice(2, 4, HELP, lineage, parent=1)]


def test_diffevolution_grid(snap_compare) -> None:
    async def grid(pilot: Pilot) -> None:
        run = ScriptedRun(generation_script())
        await pilot.app.push_screen(RunScreen(run, "diffevolution · txt2img · tiny", "halfcell"))
        await wait_until(pilot, lambda: grid_ready(pilot.app, 2), "the grid")
        await pilot.press("right", "right", "down", "left")  # gene 1: down has no row to go to

    assert snap_compare(make_app(SESSIONS), terminal_size=(80, 24), run_before=grid)


def test_sessions_browser(snap_compare) -> None:
    async def browse(pilot: Pilot) -> None:
        await open_browser(pilot)
        await wait_until(pilot, lambda: preview_decoded(pilot.app, "#session-preview")
                         and table_measured(pilot.app.screen.query_one("#session-table"), 2),
                         "the selected frame")

    two_sessions()
    assert snap_compare(make_app(SESSIONS), terminal_size=(80, 24), run_before=browse)
