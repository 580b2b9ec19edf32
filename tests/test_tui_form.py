"""The experiment form: CLI validation shown at the field, YAML in and out, no bad runs."""

from __future__ import annotations

from pathlib import Path

from lse_core.config import build_config, read_yaml
from screens.form import ExperimentForm
from screens.run_view import RunScreen
from screens.sessions import SessionsScreen
from test_tui_support import make_app, type_into


BAD_VALUES = [  # field, text typed, words of the message
    ("diffusion_steps", "0", "greater than or equal to 1"),
    ("height", "60", "multiple of 8"),
    ("guidance_scale", "lots", "valid number"),
    ("prompt", "", "needs 'prompt'"),
]


async def test_an_invalid_value_never_starts_a_run(out: Path) -> None:
    app = make_app(out)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("enter")
        form = app.screen
        for field, text, words in BAD_VALUES:
            await type_into(pilot, "#edit-prompt", "a fox")
            await type_into(pilot, f"#edit-{field}", text)
            await pilot.press("ctrl+r")
            assert app.screen is form, f"a run started with {field}={text!r}"
            row = form.rows[field]
            message = str(row.query_one(".field-error").content)
            assert row.has_class("-invalid") and f"'{field}'" in message and words in message
            assert app.focused is row.editor
            # Emptied, the field takes its default and the form is valid again.
            await type_into(pilot, f"#edit-{field}", "a fox" if field == "prompt" else "")
            assert form.validate() is not None and not row.has_class("-invalid")
    assert not out.exists()


async def test_a_missing_file_found_by_the_core_comes_back_to_its_field(out: Path) -> None:
    app = make_app(out)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("right", "enter")  # single-inference × img2img
        form = app.screen
        assert isinstance(form, ExperimentForm) and form.kind == "img2img"
        await type_into(pilot, "#edit-prompt", "a fox")
        await type_into(pilot, "#edit-image", "no/such/picture.png")
        await type_into(pilot, "#edit-height", "64")
        await type_into(pilot, "#edit-width", "64")
        await pilot.press("ctrl+r")
        await pilot.pause()
        while isinstance(app.screen, RunScreen):
            await pilot.pause(0.05)
        assert app.screen is form
        assert "file not found" in str(form.rows["image"].query_one(".field-error").content)
    assert not out.exists() or not any(out.iterdir())


async def test_save_the_form_as_yaml_and_load_it_back(out: Path, tmp_path: Path) -> None:
    saved = tmp_path / "mine.yaml"
    app = make_app(out)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("down", "down", "enter")  # random-walk × txt2img
        await type_into(pilot, "#edit-prompt", "a fox")
        await type_into(pilot, "#edit-negative", "fog")
        await pilot.press("tab")
        await type_into(pilot, "#edit-walk_steps", "3")
        app.screen.query_one("#edit-noise_rand_walk").value = True
        await pilot.press("ctrl+s")
        await type_into(pilot, "#path", str(saved))
        await pilot.press("enter")
        await pilot.pause()
        data = read_yaml(saved)
        assert data["prompt"] == "a fox|fog" and data["walk_steps"] == 3
        assert data["noise_rand_walk"] is True and data["model_id"] == "tiny"
        build_config(data)

        await pilot.press("ctrl+l")
        await type_into(pilot, "#path", str(saved))
        await pilot.press("enter")
        form = app.screen
        assert isinstance(form, ExperimentForm) and form.experiment == "random-walk"
        assert form.rows["walk_steps"].get_text() == "3"
        assert form.rows["prompt"].get_text() == "a fox|fog"
        assert len(app.screen_stack) == 3  # loading replaced the form, it did not stack


async def test_the_command_palette_offers_the_screen_keys(out: Path) -> None:
    app = make_app(out)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("ctrl+p")
        await type_into(pilot, "Input", "sessions")
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, SessionsScreen)


async def test_file_fields_take_a_picked_file(out: Path) -> None:
    app = make_app(out)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("right", "enter")  # single-inference × img2img
        form = app.screen
        await pilot.press("ctrl+o")  # on the prompt: not a file field, no dialog
        assert app.screen is form
        form.rows["image"].editor.focus()
        await pilot.press("ctrl+o")
        assert type(app.screen).__name__ == "PathDialog"
        await type_into(pilot, "#path", "resources/landscape.png")
        await pilot.press("enter")
        assert app.screen is form
        assert form.rows["image"].get_text() == "resources/landscape.png"
        # In a list, a picked file is added as one more item.
        await pilot.press("escape", "down", "down", "down", "enter")  # interpolation × img2img
        app.screen.rows["inter_prompts"].editor.focus()
        await type_into(pilot, "#edit-inter_prompts", "a fox")
        await pilot.press("ctrl+o")
        await type_into(pilot, "#path", "start.safetensors")
        await pilot.press("enter")
        assert app.screen.rows["inter_prompts"].get_text() == "a fox\nstart.safetensors"
