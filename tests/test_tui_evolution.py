"""Diffevolution in the TUI: no key ends it by accident, its bar completes, and a
finished session goes on (from the sessions browser and from ``lse resume``)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from textual.widgets import ProgressBar

from helpers import SMALL, only_session, run_cli, run_config
from lse_core.config import build_config
from lse_core.events import Finished
from screens.dialogs import ConfirmDialog
from screens.run_view import RunScreen
from screens.sessions import SessionsScreen
from test_tui_support import grid_ready, make_app, manifest, open_browser, send_key, wait_until

CONFIG = "configs/txt2img/diffevolution.yaml"


def small_diffevolution(out: Path):
    return build_config({"model_identifier": "txt2img", "exp_identifier": "diffevolution",
                         "model_id": "tiny", "prompt": "a fox", "height": 64, "width": 64,
                         "diffusion_steps": 2, "genes_per_generation": 3, "rand_seed": 7,
                         "output_path": str(out)})


def finished_diffevolution(out: Path) -> Path:
    """A diffevolution ended by the CLI: one generation, picked from by lse."""
    sets = [arg for item in (*SMALL, "genes_per_generation=2") for arg in ("--set", item)]
    assert run_cli("run", CONFIG, "--model", "tiny", "--out", str(out), *sets, "--auto", "1") == 0
    return only_session(out)


def lineage(session: Path) -> list[str]:
    return [node["name"] for node in manifest(session)["diffevolution"]["lineage"]]


async def test_esc_never_ends_a_diffevolution_and_ending_asks_first(out: Path) -> None:
    app = make_app(out)
    async with app.run_test(size=(80, 24)) as pilot:
        app.start_run(small_diffevolution(out), on_bad_input=lambda message: None)
        await wait_until(pilot, lambda: grid_ready(app, 1), "the first generation's grid")
        send_key(app, "escape")
        await wait_until(pilot, lambda: isinstance(app.screen, RunScreen), "the run view")
        run = app.screen
        send_key(app, "escape")  # the run view's esc does nothing while the run is on
        await pilot.pause(0.2)
        assert app.screen is run and run.running and run.waiting is not None
        # Every frame asked for is done: the frames bar is full, not pulsing.
        bar = run.query_one("#frames-bar", ProgressBar)
        assert bar.total is not None and bar.percentage == 1.0

        send_key(app, "g")  # back to the grid, same generation
        await wait_until(pilot, lambda: grid_ready(app, 1), "the grid again")
        grid = app.screen
        send_key(app, "x")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog), "the question")
        send_key(app, "escape")  # esc answers no
        await wait_until(pilot, lambda: app.screen is grid, "the grid after no")
        # Keys that cannot act here say so instead of doing nothing.
        send_key(app, "7")
        await wait_until(pilot, lambda: grid.problem is not None, "the digit's message")
        assert grid.problem == "gene 7: this generation has genes 0 to 2"
        send_key(app, "q")
        await wait_until(pilot, lambda: "q stops it" in (grid.problem or ""), "q's message")
        assert app.screen is grid and run.running

        send_key(app, "1")
        await wait_until(pilot, lambda: grid_ready(app, 2), "the second generation")
        send_key(app, "x")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog), "the question")
        # The lineage is the start and gene 1: a GIF, and no video promised.
        assert "lse writes the lineage GIF, and an MP4 when the lineage has 3 frames or more" \
            in app.screen.text
        send_key(app, "y")
        await wait_until(pilot, lambda: app.screen is run and not run.running, "the end")
        assert isinstance(run.final, Finished)
        assert bar.percentage == 1.0 and bar.total == run.progress.frames_done
        assert "done" in str(run.query_one("#run-status").content)

    session = only_session(out)
    assert [c["gene"] for c in manifest(session)["diffevolution"]["choices"]] == [1]
    assert manifest(session)["state"] == "done"
    assert list((session / "gifs").glob("*.gif")) and not list((session / "videos").iterdir())


def test_a_finished_diffevolution_continues_from_the_sessions_browser(out: Path) -> None:
    # Made by the CLI, which runs its own event loop: this test starts the app's afterwards.
    session = finished_diffevolution(out)
    before = lineage(session)
    assert manifest(session)["state"] == "done" and len(before) == 2
    asyncio.run(continue_in_the_browser(out, session))
    after = lineage(session)
    # generation 2 grew from the gene lse picked in generation 1; gene 0 was chosen
    picked = before[1].rsplit("-", 1)[1]
    assert after[:2] == before and after[2] == f"difevostep-2_parent-{picked}_gene-0"
    assert manifest(session)["state"] == "done"


async def continue_in_the_browser(out: Path, session: Path) -> None:
    app = make_app(out)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_browser(pilot)
        browser = app.screen
        assert browser.current.path == session
        assert [b.binding.description for b in browser.active_bindings.values()
                if b.binding.key == "r"] == ["Continue"]
        send_key(app, "r")
        # The stored answers are replayed; it asks about the next generation.
        await wait_until(pilot, lambda: grid_ready(app, 2), "the grid of the next generation")
        send_key(app, "0")
        await wait_until(pilot, lambda: grid_ready(app, 3), "a new generation")
        send_key(app, "x")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog), "the question")
        send_key(app, "y")
        await wait_until(pilot, lambda: isinstance(app.screen, RunScreen)
                         and not app.screen.running, "the end")
        assert isinstance(app.screen.final, Finished)


def test_lse_resume_continues_a_finished_diffevolution(out: Path, tmp_path: Path) -> None:
    session = finished_diffevolution(out)
    assert len(lineage(session)) == 2

    assert run_cli("resume", str(session), "--auto", "1") == 0
    assert len(lineage(session)) == 3 and manifest(session)["state"] == "done"

    actions = tmp_path / "actions.txt"
    actions.write_text("1\n0\n")
    assert run_cli("resume", str(session), "--actions", str(actions)) == 0
    names = lineage(session)
    picked = names[2].rsplit("-", 1)[1]  # lse's pick in generation 2
    assert names[3:] == [f"difevostep-3_parent-{picked}_gene-1", "difevostep-4_parent-1_gene-0"]
    assert (session / "gifs" / "output-0.gif").is_file()


def test_the_sessions_browser_says_why_a_finished_run_has_nothing_to_resume(out: Path) -> None:
    assert run_config("configs/txt2img/single_inference.yaml", out, "images_per_prompt=1") == 0
    asyncio.run(press_r_on_a_finished_single_inference(out))


async def press_r_on_a_finished_single_inference(out: Path) -> None:
    app = make_app(out)
    said: list[str] = []
    app.notify = lambda message, **options: said.append(message)  # type: ignore[method-assign]
    async with app.run_test(size=(80, 24)) as pilot:
        await open_browser(pilot)
        await pilot.press("r")
        assert isinstance(app.screen, SessionsScreen)
        assert said and "finished: nothing to resume" in said[0]
