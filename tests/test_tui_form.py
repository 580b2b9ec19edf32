"""The experiment form: CLI validation shown at the field, YAML in and out, no bad runs."""

from __future__ import annotations

from pathlib import Path

from textual import events
from textual.widgets import Input

from lse_core.config import build_config, read_yaml
from screens.form import ExperimentForm
from screens.home import HomeScreen
from screens.run_view import RunScreen
from screens.sessions import SessionsScreen
from test_tui_support import make_app, send_key, type_into, wait_until


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


async def test_keys_typed_at_full_speed_land_in_the_field_the_focus_bar_shows(out: Path) -> None:
    """Tab, shift+tab, backspace and the arrows act before the next key is handled, however
    fast keys come: each is posted as the terminal driver posts it, with no pause between."""
    app = make_app(out)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("down", "down", "down", "down", "down", "right", "right", "enter")
        form = app.screen
        assert isinstance(form, ExperimentForm) and form.experiment == "outpaint-walk"
        keys = ["prompts", "frames_per_prompt", "camera_actions", "frames_per_cam_action"]
        editors = [form.rows[key].editor for key in keys]
        first = form.focus_chain.index(editors[0])
        assert [form.focus_chain.index(e) for e in editors] == list(range(first, first + 4))
        editors[0].focus()
        await pilot.pause()
        typed = ["a", "tab", "5", "tab", "r", "i", "g", "h", "t", "tab", "2",
                 "shift+tab", "shift+tab", "shift+tab", "backspace", "b",
                 "tab", "tab", "tab", "3", "left", "1", "end", "4"]
        for key in typed:
            send_key(app, key)
        await wait_until(pilot, lambda: form.rows["frames_per_cam_action"].get_text() == "2134",
                         "the last key to arrive")
        assert [form.rows[key].get_text() for key in keys] == ["b", "5", "right", "2134"]
        assert app.focused is editors[3]

        # One-line fields too: the prompt and its negative.
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, HomeScreen)
                         and app.focused is app.screen.query_one("#experiments"), "home")
        await pilot.press("up", "up", "up", "up", "up", "left", "left", "enter")
        form = app.screen
        assert form.experiment == "single-inference" and app.focused is form.rows["prompt"].editor
        for key in ["a", "b", "backspace", "c", "home", "d", "tab", "n", "o", "backspace"]:
            send_key(app, key)
        await wait_until(pilot, lambda: form.rows["prompt"].get_text() == "dac|n",
                         "the prompt and its negative")


async def test_a_space_typed_on_a_switch_right_before_a_tab_turns_that_switch(out: Path) -> None:
    """Found in the 80×24 tmux walk: `space tab 1 2` typed fast on a random walk's switch
    left it off (the space was read after the tab had moved the focus away)."""
    app = make_app(out)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("down", "down", "enter")  # random-walk × txt2img
        form = app.screen
        assert isinstance(form, ExperimentForm) and form.experiment == "random-walk"
        switch = form.rows["noise_rand_walk"].editor
        switch.focus()
        await pilot.pause()
        for key in ["space", "tab", "1", "2", "shift+tab", "shift+tab", "enter",
                    "tab", "tab", "tab", "5"]:
            send_key(app, key)
        await wait_until(pilot, lambda: form.rows["step_size"].get_text() == "5",
                         "the last key to arrive", timeout=20)
        assert form.rows["walk_steps"].get_text() == "12"
        assert form.rows["noise_rand_walk"].editor.value is True
        assert form.rows["prompt_rand_walk"].editor.value is True
        assert app.focused is form.rows["step_size"].editor


async def test_load_yaml_takes_a_path_from_the_working_folder_and_completes_it(out: Path) -> None:
    app = make_app(out)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("l")
        path = app.screen.query_one("#path", Input)
        assert path.value == ""  # nothing typed for the user: the path is the user's own
        await pilot.press(*"configs/inp")
        await wait_until(pilot, lambda: path._suggestion == "configs/inpaint/", "a completion")
        await pilot.press("right")  # takes the completion
        assert path.value == "configs/inpaint/"
        app.post_message(events.Paste("single_inference.yaml"))
        await wait_until(pilot, lambda: path.value.endswith(".yaml"), "the pasted name")
        await pilot.press("enter")
        form = app.screen
        assert isinstance(form, ExperimentForm)
        assert (form.kind, form.experiment) == ("inpaint", "single-inference")


async def test_arrows_and_enter_typed_fast_on_home_open_the_experiment_they_reach(
        out: Path) -> None:
    app = make_app(out)
    async with app.run_test(size=(80, 24)) as pilot:
        for key in ["down", "down", "down", "right", "enter"]:  # interpolation × img2img
            send_key(app, key)
        await wait_until(pilot, lambda: isinstance(app.screen, ExperimentForm)
                         and app.screen.is_mounted and app.focused is not None, "a form")
        assert (app.screen.experiment, app.screen.kind) == ("interpolation", "img2img")


async def test_keys_typed_while_a_form_opens_reach_its_first_field(out: Path) -> None:
    app = make_app(out)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: bool(app.screen_stack) and app.focused is not None, "home")
        for key in ["enter", *"a fox", "tab", *"fog"]:  # before the form is even built
            send_key(app, key)
        await wait_until(pilot, lambda: isinstance(app.screen, ExperimentForm)
                         and app.screen.rows["prompt"].get_text() == "a fox|fog", "the prompt",
                         timeout=10)


async def test_a_tiny_form_starts_at_the_guidance_that_draws_the_caption_in_four_steps(
        out: Path) -> None:
    """The newcomer's flow (issue 18.1): `lse --model tiny`, a caption, 4 steps, run —
    the picture has the caption's colours (at the configs' guidance 7.5 it would not)."""
    from PIL import Image

    from lse_core.session import Session
    from lse_core.tiny.evaluate import judge
    from test_tui_support import run_to_end

    app = make_app(out)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("enter")  # single-inference × txt2img
        form = app.screen
        assert form.rows["guidance_scale"].get_text() == "2.0"
        assert app.form_values({"guidance_scale": 7.5})["guidance_scale"] == 7.5  # a YAML's wins
        await type_into(pilot, "#edit-prompt", "a red circle on a white background")
        for field, value in (("rand_seed", "0"), ("height", "64"), ("width", "64"),
                             ("diffusion_steps", "4"), ("images_per_prompt", "4")):
            await type_into(pilot, f"#edit-{field}", value)
        send_key(app, "ctrl+r")
        await run_to_end(pilot)
    [session] = [path for path in out.iterdir() if not path.name.startswith(".")]
    records = Session.open(session).frames()
    assert len(records) == 4
    for record in records:
        with Image.open(session / "images" / f"{record.name}.png") as image:
            assert judge(image, "red", "white").ok, record.name
