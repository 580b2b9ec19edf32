"""Seeing the frames: every step of visualize-diffusion, story order, readable labels,
a zoom as large as the terminal, and the keys help."""

from __future__ import annotations

import asyncio
from pathlib import Path

from textual.widgets import OptionList

from helpers import only_session, run_config
from lse_core.config import build_config
from lse_core.events import Finished
from screens.help import KeysScreen
from screens.home import HomeScreen
from screens.preview import FramePreview
from screens.run_view import RunScreen
from screens.sessions import SessionsScreen
from screens.viewer import FrameViewer
from test_tui_support import (make_app, open_browser, preview_decoded, run_to_end, send_key,
                              wait_until)

TINY = {"model_id": "tiny", "height": 64, "width": 64, "diffusion_steps": 2, "rand_seed": 3}


def caption(screen, selector: str = "#preview") -> str:
    return screen.query_one(selector, FramePreview).caption_text


async def run_config_in_app(pilot, out: Path, **keys) -> RunScreen:
    pilot.app.start_run(build_config({**TINY, "output_path": str(out), **keys}),
                        on_bad_input=lambda message: None)
    await run_to_end(pilot)
    run = pilot.app.screen
    assert isinstance(run.final, Finished), run.final
    return run


async def test_visualize_diffusion_steps_through_every_step_and_the_grid(out: Path) -> None:
    app = make_app(out)
    async with app.run_test(size=(80, 24)) as pilot:
        run = await run_config_in_app(pilot, out, model_identifier="txt2img",
                                      exp_identifier="visualize-diffusion", prompt="a fox",
                                      diffusion_steps=4)
        assert [record.name for record, _ in run.frames] == [
            "output-0_diffstep-0", "output-0_diffstep-1", "output-0_diffstep-2",
            "output-0_diffstep-3", "output-0_diffusion-grid"]
        assert all(path.is_file() for _, path in run.frames)
        assert caption(run).startswith("all steps · ")
        for step in (3, 2, 1, 0):
            await pilot.press("left")
            assert caption(run).startswith(f"step {step} · 64×64")
        await pilot.press("left")  # the first frame stays the first
        assert run.shown == 0


async def test_outpaint_frames_are_listed_in_the_order_of_the_walk(out: Path) -> None:
    app = make_app(out)
    async with app.run_test(size=(80, 24)) as pilot:
        run = await run_config_in_app(
            pilot, out, model_identifier="inpaint", exp_identifier="outpaint-walk",
            image="resources/landscape.png", prompts=["a shore", "a town"],
            frames_per_prompt=[1, 1], camera_actions=["right", "up"],
            frames_per_cam_action=[1, 1], num_filler_frames=2)
        # Each keyframe is made before the filler that leads up to it; the list is the walk.
        assert [record.name for record, _ in run.frames] == [
            "init", "0_filler_frame_1", "frame-0", "1_filler_frame_1", "frame-1"]
        labels = [str(option.prompt) for option in run.query_one("#frame-list").options]
        assert labels == ["start", "key 0 · filler 1", "key 0", "key 1 · filler 1", "key 1"]


def test_a_random_walk_session_starts_at_its_start_frame(out: Path) -> None:
    assert run_config("configs/txt2img/random_walk.yaml", out, "walk_steps=2",
                      "walk_directions=1", "prompt_rand_walk=false") == 0
    asyncio.run(look_at_the_walk(out))


async def look_at_the_walk(out: Path) -> None:
    app = make_app(out)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_browser(pilot)
        browser = app.screen
        assert [path.stem for _, path in browser.frames] == [
            "output-0_direction-0_randwalkstep-start", "output-0_direction-0_randwalkstep-1",
            "output-0_direction-0_randwalkstep-2"]
        labels = [str(o.prompt) for o in browser.query_one("#session-frames", OptionList).options]
        assert labels[0] == "dir 0 · start"

        # z: the selected frame as large as the terminal allows; ← → move, esc comes back.
        await pilot.press("z")
        viewer = app.screen
        assert isinstance(viewer, FrameViewer)
        await wait_until(pilot, lambda: preview_decoded(app, "#viewer-image"), "the zoomed frame")
        small = browser.query_one(".preview-image").size
        zoomed = viewer.query_one("#viewer-image")

        def room() -> int:
            return zoomed.size.height - zoomed.query_one(".preview-caption").size.height

        # The picture takes every row its caption leaves (sized on the layout pass after
        # it arrives: later on a busy machine).
        await wait_until(pilot, lambda: zoomed.query_one(".preview-image").size.height >= room() - 1
                         and room() >= 24 - 8, "the zoomed frame laid out")
        assert zoomed.query_one(".preview-image").size.height > small.height
        await pilot.press("left")
        await pilot.press("escape")
        assert app.screen is browser
        assert browser.query_one("#session-frames", OptionList).highlighted == 1
    assert only_session(out)


async def test_the_run_view_preview_fills_its_space_and_zooms(out: Path) -> None:
    app = make_app(out)
    async with app.run_test(size=(80, 24)) as pilot:
        run = await run_config_in_app(pilot, out, model_identifier="txt2img",
                                      exp_identifier="single-inference", prompt="a fox")
        # Long paths in the log wrap within its width, none is cut at 80 columns.
        log = run.query_one("#run-log")
        assert log.lines and all(strip.cell_length <= log.scrollable_content_region.width
                                 for strip in log.lines)
        preview = run.query_one("#preview")
        await wait_until(pilot, lambda: preview.query_one(".preview-image").size.height > 0,
                         "the frame laid out")
        image = preview.query_one(".preview-image").size
        # The frame takes the preview's height but its two caption rows: 80x24 leaves 13.
        assert image.height == preview.size.height - 2 == 13 and image.width == 2 * 13
        send_key(app, "z")
        await wait_until(pilot, lambda: isinstance(app.screen, FrameViewer)
                         and preview_decoded(app, "#viewer-image"), "the viewer")
        await pilot.pause()
        assert app.screen.query_one(".preview-image").size.height == 24 - 5


async def test_question_mark_lists_every_key_of_the_screen(out: Path) -> None:
    app = make_app(out)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("question_mark")
        keys = app.screen
        assert isinstance(keys, KeysScreen)
        described = {row.description for row in keys.rows}
        assert {b.description for b in HomeScreen.BINDINGS} <= described
        assert "Command palette: every action by name" in described
        await pilot.press("escape")
        assert isinstance(app.screen, HomeScreen)

        await open_browser(pilot)
        await pilot.press("question_mark")  # an empty sessions folder: nothing to export
        rows = {row.description: row for row in app.screen.rows}
        assert {b.tooltip or b.description for b in SessionsScreen.BINDINGS} <= set(rows)
        assert not rows["Write the session's GIF and MP4 again from its frames"].available
