"""The TUI driven by keys with the real tiny model: form → run → preview → session."""

from __future__ import annotations

from pathlib import Path

import yaml
from textual.widgets import OptionList

from helpers import only_session
from lse_core.events import Finished, Interrupted
from screens.dialogs import ChoiceDialog, ConfirmDialog
from screens.evolution import EvolutionScreen, GeneTile
from screens.form import ExperimentForm
from screens.preview import FramePreview
from screens.run_view import RunScreen
from test_tui_support import (browser_ready, grid_ready, make_app, manifest, open_browser,
                              run_to_end, send_key, start_slow_single_inference, type_into,
                              wait_until)


async def test_single_inference_from_home_to_saved_frame(out: Path) -> None:
    app = make_app(out)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("enter")  # the cursor starts on single-inference × txt2img
        assert isinstance(app.screen, ExperimentForm)
        await type_into(pilot, "#edit-prompt", "a lighthouse at dusk")
        await type_into(pilot, "#edit-negative", "blurry")
        await type_into(pilot, "#edit-height", "64")
        await type_into(pilot, "#edit-width", "64")
        await type_into(pilot, "#edit-diffusion_steps", "2")
        await pilot.press("ctrl+r")
        await run_to_end(pilot)

        screen = app.screen
        assert isinstance(screen.final, Finished), screen.final
        preview = screen.query_one("#preview", FramePreview)
        assert preview.caption_text == "image 0 · 64×64\noutput-0_diffstep-2.png"
        assert preview.query_one(".preview-image").image.size == (64, 64)

    session = only_session(out)
    assert manifest(session)["state"] == "done"
    assert (session / "images" / "output-0_diffstep-2.png").is_file()
    config = yaml.safe_load((session / "configs" / "config.yaml").read_text())
    assert config["prompt"] == "a lighthouse at dusk|blurry"
    assert (config["model_id"], config["height"], config["diffusion_steps"]) == ("tiny", 64, 2)


async def test_interpolation_loaded_from_yaml_runs_and_exports(out: Path) -> None:
    app = make_app(out)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("l")
        await type_into(pilot, "#path", "configs/txt2img/interpolation.yaml")
        await pilot.press("enter")
        form = app.screen
        assert isinstance(form, ExperimentForm) and form.experiment == "interpolation"
        # The YAML's keyframes are in the list editor; --model tiny replaced its model_id.
        assert form.rows["inter_noises"].get_text() == "0\n1\n2"
        assert form.rows["model_id"].get_text() == "tiny"
        await type_into(pilot, "#edit-inter_prompts", "a red lighthouse\na blue lighthouse")
        await type_into(pilot, "#edit-inter_noises", "3\n4")
        await type_into(pilot, "#edit-interpolation_steps", "1")
        await type_into(pilot, "#edit-height", "64")
        await type_into(pilot, "#edit-width", "64")
        await type_into(pilot, "#edit-diffusion_steps", "2")
        await type_into(pilot, "#edit-output_path", str(out))
        await pilot.press("ctrl+r")
        await run_to_end(pilot)
        run = app.screen
        assert isinstance(run.final, Finished), run.final
        assert [record.name for record, _ in run.frames] == [
            "interpolation_lstitms-0,1_step-start", "interpolation_lstitms-0,1_step-1",
            "interpolation_lstitms-0,1_step-end"]
        gif = next(p for p in run.final.outputs if p.suffix == ".gif")

        # The sessions browser writes the GIF again from the saved frames.
        gif.unlink()
        await pilot.press("escape", "escape")
        await open_browser(pilot)
        await pilot.press("e")
        await wait_until(pilot, gif.is_file, "the exported GIF")

    assert manifest(only_session(out))["state"] == "done"


async def test_keys_answer_while_generating_and_stop_keeps_a_resumable_session(out: Path) -> None:
    app = make_app(out)
    async with app.run_test(size=(80, 24)) as pilot:
        # 16 frames of 128×128 one by one: seconds of work, stopped after two frames.
        await start_slow_single_inference(pilot, images=16, steps=3, frames_before=2)
        run = app.screen
        # The preview follows the newest frame; ← steps back while frames are being made.
        newest = run.shown
        send_key(app, "left")
        await wait_until(pilot, lambda: run.shown != newest, "the preview to step back")
        assert run.running, "the run ended before the key was answered; make it longer"
        caption = run.query_one("#preview", FramePreview).caption_text
        assert caption.startswith(f"image {run.shown} · 128×128")
        assert run.query_one("#frame-list", OptionList).highlighted == run.shown

        send_key(app, "q")
        await wait_until(pilot, lambda: not run.running, "the run to stop")
        assert isinstance(run.final, Interrupted)

    session = only_session(out)
    assert manifest(session)["state"] == "interrupted"
    assert 2 <= manifest(session)["frames_done"] < 16


async def test_resume_from_the_sessions_browser_finishes_the_session(out: Path) -> None:
    app = make_app(out)
    async with app.run_test(size=(80, 24)) as pilot:
        # Frames one by one, so the stop comes before the last of them.
        await start_slow_single_inference(pilot, images=6, steps=2, frames_before=1)
        send_key(app, "q")
        await run_to_end(pilot)
        session = only_session(out)
        assert manifest(session)["state"] == "interrupted"
        done_before = manifest(session)["frames_done"]

        await pilot.press("escape", "escape")
        await open_browser(pilot)
        browser = app.screen
        assert browser.current.path == session and browser.current.state == "interrupted"
        await pilot.press("r")
        await run_to_end(pilot)
        run = app.screen
        assert isinstance(run.final, Finished), run.final
        assert len(run.frames) == 6  # the saved frames are listed again, then the rest
        await pilot.press("escape")
        assert app.screen is browser
        await wait_until(pilot, lambda: browser_ready(app) and browser.current.state == "done",
                         "the browser to list the finished session")

    assert manifest(session)["state"] == "done"
    assert manifest(session)["frames_done"] == 6 > done_before


async def test_new_experiment_from_a_saved_frame_without_images(out: Path) -> None:
    app = make_app(out, graphics="none")  # text only: the frame is named, not drawn
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("enter")
        await type_into(pilot, "#edit-prompt", "a fox")
        await type_into(pilot, "#edit-height", "64")
        await type_into(pilot, "#edit-width", "64")
        await type_into(pilot, "#edit-diffusion_steps", "2")
        await pilot.press("ctrl+r")
        await run_to_end(pilot)
        first = only_session(out)
        preview = app.screen.query_one("#preview", FramePreview)
        assert not preview.query(".preview-image")
        assert preview.caption_text.startswith("image 0 · 64×64\n")
        await pilot.press("escape", "escape")
        await open_browser(pilot)
        await pilot.press("n")
        await pilot.press("enter")  # the dialog offers the session's own experiment first
        form = app.screen
        assert isinstance(form, ExperimentForm)
        embedding = first / "embeddings" / "output-0_diffstep-2.safetensors"
        assert form.rows["load_prompt_embeds"].get_text() == str(embedding)
        assert form.rows["load_latent_noise"].get_text() == str(embedding)
        # Only the frame comes from the session: the steps are the experiment's default again.
        assert form.rows["diffusion_steps"].get_text() == ""
        await type_into(pilot, "#edit-diffusion_steps", "2")
        await pilot.press("ctrl+r")
        await run_to_end(pilot)
        assert isinstance(app.screen.final, Finished), app.screen.final

    second = next(p for p in out.iterdir() if p != first)
    config = yaml.safe_load((second / "configs" / "config.yaml").read_text())
    assert config["load_latent_noise"] == str(embedding.resolve())


async def test_diffevolution_grid_picks_rerolls_steps_back_and_ends(out: Path) -> None:
    app = make_app(out)

    def asking(generation: int) -> bool:
        return grid_ready(app, generation)

    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("down", "down", "down", "down", "enter")  # diffevolution × txt2img
        form = app.screen
        assert isinstance(form, ExperimentForm) and form.experiment == "diffevolution"
        await type_into(pilot, "#edit-prompt", "a fox")
        await type_into(pilot, "#edit-height", "64")
        await type_into(pilot, "#edit-width", "64")
        await type_into(pilot, "#edit-diffusion_steps", "2")
        await type_into(pilot, "#edit-genes_per_generation", "4")
        send_key(app, "ctrl+r")
        await wait_until(pilot, lambda: asking(1), "the first generation's grid")
        grid = app.screen
        assert isinstance(grid, EvolutionScreen)
        assert len(grid.query(GeneTile)) == 4 and not grid.has_class("-compact")
        send_key(app, "right")
        send_key(app, "enter")  # gene 1 becomes node 1
        await wait_until(pilot, lambda: asking(2), "the second generation")
        send_key(app, "r")
        await wait_until(pilot, lambda: asking(3), "the re-rolled generation")
        send_key(app, "b")
        await wait_until(pilot, lambda: isinstance(app.screen, ChoiceDialog), "the lineage")
        send_key(app, "up")  # from the current parent (node 1) to the start
        send_key(app, "enter")
        await wait_until(pilot, lambda: asking(4), "the generation from node 0")
        send_key(app, "0")
        await wait_until(pilot, lambda: asking(5), "the fifth generation")
        send_key(app, "x")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog), "the question")
        send_key(app, "y")
        await wait_until(pilot, lambda: isinstance(app.screen, RunScreen)
                         and not app.screen.running, "the run to end")
        assert isinstance(app.screen.final, Finished), app.screen.final

    session = only_session(out)
    evolution = manifest(session)["diffevolution"]
    reroll = {"gene": None, "auto": 0, "prompt": None, "back": None, "end": False,
              "finish": False}
    assert evolution["choices"] == [{**reroll, "gene": 1}, reroll, {**reroll, "back": 0},
                                    {**reroll, "gene": 0}]
    assert [(n["id"], n["name"], n["parent"]) for n in evolution["lineage"]] == [
        (0, "difevostep-start", None), (1, "difevostep-1_parent-start_gene-1", 0),
        (2, "difevostep-4_parent-start_gene-0", 0)]
    assert (session / "gifs" / "output-0.gif").is_file()
