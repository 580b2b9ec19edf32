"""The sessions browser acts on the session it shows: selection by identity across
reloads, each action naming its session, and `n` starting from the frame alone."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from textual.widgets import DataTable, Label

from helpers import only_session, run_config
from lse_core.config import ExperimentConfig
from lse_core.sources import TINY_GUIDANCE
from screens.dialogs import ChoiceDialog
from screens.form import ExperimentForm
from screens.run_view import RunScreen
from test_tui_support import browser_ready, make_app, manifest, open_browser, run_to_end, wait_until

STAMP = 1767323045.0


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real, finished single-inference session (tiny, 64×64, 2 steps)."""
    out = tmp_path_factory.mktemp("made") / "sessions"
    assert run_config("configs/txt2img/single_inference.yaml", out, "images_per_prompt=1") == 0
    return only_session(out)


def copy_session(source: Path, root: Path, name: str, updated: float, state: str) -> Path:
    """A copy of ``source`` under another name, as if stopped (``state``) at ``updated``."""
    target = root / name
    shutil.copytree(source, target)
    data = manifest(target)
    data.update(state=state, updated=updated)
    (target / "session.json").write_text(json.dumps(data))
    return target


def selected_row(app) -> Path:
    table = app.screen.query_one("#session-table", DataTable)
    return Path(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)


async def test_a_reload_that_resorts_the_list_keeps_the_session_and_r_resumes_it(
        finished: Path, tmp_path: Path) -> None:
    root = tmp_path / "sessions"
    older = copy_session(finished, root, "older_txt2img_single-inference", STAMP, "interrupted")
    newer = copy_session(finished, root, "newer_txt2img_single-inference", STAMP + 60,
                         "interrupted")
    app = make_app(root)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_browser(pilot)
        browser = app.screen
        assert selected_row(app) == newer  # newest first
        await pilot.press("down")
        await wait_until(pilot, lambda: browser.current is not None
                         and browser.current.path == older, "the older session selected")

        # A newer session appears (another run), the list is read again and re-sorted.
        newest = copy_session(finished, root, "newest_txt2img_single-inference", STAMP + 120,
                              "interrupted")
        await pilot.press("f5")
        await wait_until(pilot, lambda: browser.query_one(DataTable).row_count == 3
                         and browser_ready(app), "the reloaded list")
        assert selected_row(app) == older == browser.current.path
        assert str(browser.query_one("#session-selected", Label).render()).startswith(
            f"▶ {older.name}")

        said: list[tuple[str, str]] = []
        app.notify = lambda message, title="", **_: said.append((title, message))  # type: ignore
        await pilot.press("r")
        assert said[0] == ("Resuming", older.name)  # named before it acts
        await run_to_end(pilot)
        assert isinstance(app.screen, RunScreen) and app.screen.run.resume_dir == older

    assert manifest(older)["state"] == "done"
    assert manifest(newer)["state"] == manifest(newest)["state"] == "interrupted"


async def test_export_names_the_session_it_exports(finished: Path, tmp_path: Path) -> None:
    root = tmp_path / "sessions"
    copy_session(finished, root, "first_txt2img_single-inference", STAMP + 60, "done")
    second = copy_session(finished, root, "second_txt2img_single-inference", STAMP, "done")
    app = make_app(root)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_browser(pilot)
        await pilot.press("down")
        await wait_until(pilot, lambda: app.screen.current is not None
                         and app.screen.current.path == second, "the second session selected")
        said: list[tuple[str, str]] = []
        app.notify = lambda message, title="", **_: said.append((title, message))  # type: ignore
        await pilot.press("e")
        assert said[0] == ("Exporting", second.name)  # named before it acts
        await wait_until(pilot, lambda: len(said) == 2, "the export's end")
    # What the export did was done to that session (one image: nothing to animate).
    assert said[1] == ("Export", f"{second}: this session has no GIF or video to export")


async def test_a_new_experiment_from_a_frame_takes_only_the_frame(finished: Path,
                                                                  tmp_path: Path) -> None:
    root = tmp_path / "sessions"
    source = copy_session(finished, root, "source_txt2img_diffevolution", STAMP, "done")
    # The source session's own settings, far from any experiment's defaults.
    config = source / "configs" / "config.yaml"
    settings = {**yaml.safe_load(config.read_text()), "exp_identifier": "diffevolution",
                "step_size": 0.3, "diffusion_steps": 7, "guidance_scale": 3.0,
                "scheduler": "DDIMScheduler", "rand_seed": 99, "gif_frame_dur": 40}
    config.write_text(yaml.safe_dump(settings))
    frame = next((source / "images").glob("*.png"))
    embedding = source / "embeddings" / f"{frame.stem}.safetensors"

    app = make_app(root)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_browser(pilot)
        await pilot.press("n")
        dialog = app.screen
        assert isinstance(dialog, ChoiceDialog) and source.name in dialog.title_text
        dialog.query_one("OptionList").highlighted = dialog.choices.index("random-walk")
        await pilot.press("enter")
        form = app.screen
        assert isinstance(form, ExperimentForm) and form.experiment == "random-walk"
        # A random walk needs a walk chosen (both are off by default), as from the home screen.
        form.query_one("#edit-noise_rand_walk").value = True
        await pilot.pause()
        cfg, problem = form.check()
        assert problem is None, problem

    defaults = ExperimentConfig.model_fields
    for key in ("step_size", "diffusion_steps", "scheduler", "rand_seed", "gif_frame_dur"):
        assert getattr(cfg, key) == defaults[key].default, key
    assert cfg.guidance_scale == TINY_GUIDANCE  # where every tiny form starts, not the source's
    assert cfg.load_prompt_embeds == cfg.load_latent_noise == str(embedding)
    assert cfg.model_id == "tiny"  # the model the embedding belongs to
