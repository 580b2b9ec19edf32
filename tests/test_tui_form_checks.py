"""The form's checks and controls: errors that clear when fixed, defaults from the
config, YAML with only the experiment's keys, readable on/off switches, a scheduler list."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Input, Label, Select, Switch, TextArea

from lse_core.config import EXPERIMENTS, MODEL_KINDS, build_config, read_yaml
from screens.fields import SCREEN_KEYS, form_keys, parse_value
from screens.form import ExperimentForm
from screens.home import INPAINT_ONLY
from test_tui_support import make_app, type_into, wait_until

FORMS = [(kind, experiment) for experiment in EXPERIMENTS for kind in MODEL_KINDS
         if experiment not in INPAINT_ONLY or kind == "inpaint"]


def required_inputs(kind: str, experiment: str) -> dict[str, object]:
    """The keys an experiment cannot do without (files are only looked at when it runs)."""
    if experiment == "outpaint-walk":
        return {"image": "start.png", "prompts": ["a"], "frames_per_prompt": [1],
                "camera_actions": ["right"], "frames_per_cam_action": [1]}
    keys: dict[str, object] = ({"inter_prompts": ["a"], "inter_noises": [1]}
                               if experiment == "interpolation" else {"prompt": "a fox"})
    if experiment == "random-walk":
        keys["noise_rand_walk"] = True
    if kind in ("img2img", "inpaint"):
        keys["image"] = "start.png"
    if kind == "inpaint":
        keys["mask"] = "mask.png"
    return keys


def error_text(form: ExperimentForm, key: str) -> str:
    return str(form.rows[key].query_one(".field-error").content)


async def test_an_error_clears_as_soon_as_its_value_is_fixed(out: Path) -> None:
    app = make_app(out)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("enter")
        form = app.screen
        await type_into(pilot, "#edit-prompt", "a fox")
        await type_into(pilot, "#edit-height", "100")
        await pilot.press("ctrl+r")
        assert app.screen is form and form.rows["height"].has_class("-invalid")
        # The value is named once, not "(got 100) (got 100)".
        assert error_text(form, "height") == "key 'height': must be a multiple of 8 (got 100)"

        await type_into(pilot, "#edit-height", "64")  # fixed: no Ctrl+R needed
        assert not form.rows["height"].has_class("-invalid") and error_text(form, "height") == ""

        # A new mistake shows at once, and the cursor stays where the user types.
        await type_into(pilot, "#edit-width", "7")
        assert form.rows["width"].has_class("-invalid")
        assert app.focused is form.rows["width"].editor
        await type_into(pilot, "#edit-width", "")
        assert not any(row.has_class("-invalid") for row in form.rows.values())


async def test_no_error_shows_while_typing_before_the_first_check(out: Path) -> None:
    app = make_app(out)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("enter")
        form = app.screen
        await type_into(pilot, "#edit-height", "6")  # on the way to 64
        assert not form.rows["height"].has_class("-invalid")


@pytest.mark.parametrize("kind, experiment", FORMS)
async def test_the_forms_defaults_are_the_configs_defaults(out: Path, kind: str,
                                                           experiment: str) -> None:
    required = required_inputs(kind, experiment)
    defaults = build_config({"model_identifier": kind, "exp_identifier": experiment, **required})
    app = make_app(out)
    async with app.run_test(size=(80, 24)) as pilot:
        form = ExperimentForm(kind, experiment)
        await app.push_screen(form)
        await pilot.pause()
        for key, row in form.rows.items():
            if key in required:
                continue
            expected = getattr(defaults, key)
            editor = row.editor
            if isinstance(editor, Switch | Select):
                # what the form sends for the key when it is left alone
                assert parse_value(row.spec, row.get_text()) == expected, key
            elif isinstance(editor, TextArea):
                assert editor.text == "" and expected is None, key
            else:
                assert isinstance(editor, Input) and editor.value == "", key
                # An empty field shows its default; a default of None shows what unset means.
                if expected is not None:
                    assert editor.placeholder == str(expected), key
                else:
                    assert row.spec.default is None, key
        # Run untouched, the form's config is the config's defaults, key for key.
        for key, value in required.items():
            editor = form.rows[key].editor
            if isinstance(editor, TextArea):
                editor.load_text("\n".join(map(str, value)))
            else:
                editor.value = value if isinstance(editor, Switch) else str(value)
        await pilot.pause()
        cfg = form.validate()
        assert cfg is not None
        assert cfg.model_dump() == defaults.model_dump()


async def test_ctrl_s_writes_only_the_keys_of_the_experiment(out: Path, tmp_path: Path) -> None:
    saved = tmp_path / "interpolation.yaml"
    app = make_app(out)
    async with app.run_test(size=(80, 24)) as pilot:
        # A YAML that also holds random-walk and diffevolution keys, loaded into interpolation.
        app.open_form("txt2img", "interpolation", {
            "inter_prompts": ["a fox", "a cat"], "inter_noises": [1, 2], "walk_steps": 3,
            "genes_per_generation": 5, "prompt": "unused", "step_size": 0.5})
        await pilot.pause()
        await pilot.press("ctrl+s")
        await type_into(pilot, "#path", str(saved))
        await pilot.press("enter")
        await pilot.pause()
    data = read_yaml(saved)
    assert set(data) <= {*SCREEN_KEYS, *form_keys("txt2img", "interpolation")}
    assert not {"walk_steps", "genes_per_generation", "prompt", "step_size",
                "images_per_prompt", "prompt_rand_walk"} & set(data)
    assert data["inter_prompts"] == ["a fox", "a cat"] and data["interpolation_steps"] == 5
    build_config(data)


async def test_switches_say_on_or_off_in_words(out: Path) -> None:
    app = make_app(out)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("enter")
        form = app.screen
        form.query_one("#advanced").collapsed = False
        row = form.rows["vae_slicing"]
        state = row.query_one(".switch-state", Label)
        assert str(state.content) == "off" and row.get_text() == "false"
        row.editor.focus()
        await pilot.press("space")
        assert str(state.content) == "on" and row.get_text() == "true"
        assert isinstance(row.editor, Switch) and row.editor.value is True


async def test_the_scheduler_is_a_list_and_a_wrong_one_says_so_briefly(out: Path) -> None:
    app = make_app(out)
    async with app.run_test(size=(80, 24)) as pilot:
        app.open_form("txt2img", "single-inference", {"prompt": "a fox", "scheduler": "Euler"})
        await pilot.pause()
        scheduler = app.screen.rows["scheduler"].editor
        assert isinstance(scheduler, Select) and scheduler.value == "EulerDiscreteScheduler"

        # A YAML's unknown scheduler is shown with a short error, not 13 names.
        await pilot.press("escape")
        app.open_form("txt2img", "single-inference", {"prompt": "a fox", "scheduler": "Warp"})
        await pilot.pause()
        form = app.screen
        message = error_text(form, "scheduler")
        assert message == "key 'scheduler': unknown scheduler (got 'Warp')"
        assert form.rows["scheduler"].query_one(".field-error").size.height == 1
        form.rows["scheduler"].editor.value = "DDIMScheduler"  # chosen from the list
        await pilot.pause()
        assert error_text(form, "scheduler") == "" and form.validate() is not None


async def test_a_problem_found_by_the_run_shows_at_its_keys_field(out: Path, tmp_path: Path) -> None:
    """The message ("…/narrow.safetensors: tensor prompt_embed has shape …") names no key:
    the field is found from the key the error carries."""
    import torch
    from safetensors.torch import save_file

    narrow = tmp_path / "narrow.safetensors"
    save_file({"prompt_embed": torch.zeros(2, 77, 32)}, str(narrow))
    app = make_app(out)
    async with app.run_test(size=(80, 24)) as pilot:
        app.open_form("txt2img", "single-inference", {
            "load_prompt_embeds": str(narrow), "height": 64, "width": 64, "diffusion_steps": 2})
        await pilot.pause()
        form = app.screen
        assert form.validate() is not None  # nothing the form can see without the model
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: app.screen is form
                         and form.rows["load_prompt_embeds"].has_class("-invalid"),
                         "the run's error back at its field")
        assert "tensor prompt_embed has shape (2, 77, 32)" in error_text(form, "load_prompt_embeds")
        assert not form.query_one("#form-error").has_class("-shown")


async def test_a_deeply_nested_yaml_loaded_with_l_is_one_line(out: Path, tmp_path: Path) -> None:
    config = tmp_path / "deep.yaml"
    config.write_text("model_identifier: txt2img\nexp_identifier: single-inference\n"
                      f"prompt: {'[' * 1000}\n")
    app = make_app(out)
    async with app.run_test(size=(120, 24)) as pilot:
        home = app.screen
        await pilot.press("l")
        await type_into(pilot, "#path", str(config))
        await pilot.press("enter")
        await wait_until(pilot, lambda: bool(app._notifications), "the message")
        [note] = list(app._notifications)
        assert note.message == f"{config}: refused at line 3: nested deeper than 32 levels"
        assert app.screen is home and app.is_running
