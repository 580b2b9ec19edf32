"""The TUI's pure parts: fields from the config schema, and progress/ETA from events."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from lse_core.config import EXPERIMENTS, MODEL_KINDS, ExperimentConfig
from lse_core.errors import BadInput
from lse_core.events import FrameReady, Started, Step
from lse_core.frames import FrameRecord
from screens.evolution import MIN_PREVIEW, grid_layout, lineage_rows
from screens.fields import format_value, parse_value, sections_for, spec_for
from screens.run_progress import RunProgress


@pytest.mark.parametrize("kind", MODEL_KINDS)
@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_form_shows_each_key_once_and_only_keys_of_the_schema(kind: str,
                                                                   experiment: str) -> None:
    keys = [spec.key for _, specs in sections_for(kind, experiment) for spec in specs]
    assert len(keys) == len(set(keys))
    assert set(keys) <= set(ExperimentConfig.model_fields) - {"model_identifier", "exp_identifier"}
    assert {"model_id", "diffusion_steps", "output_path", "batch_size"} <= set(keys)


def test_forms_show_what_their_experiment_and_kind_read() -> None:
    def keys(kind: str, experiment: str) -> set[str]:
        return {s.key for _, specs in sections_for(kind, experiment) for s in specs}

    assert {"prompt", "rand_seed", "height"} <= keys("txt2img", "single-inference")
    single = keys("txt2img", "single-inference")
    assert not {"image", "mask", "inter_prompts", "walk_steps"} & single
    assert {"image", "strength"} <= keys("img2img", "random-walk")
    assert {"image", "mask"} <= keys("inpaint", "diffevolution") and "strength" not in keys(
        "inpaint", "diffevolution")
    assert {"inter_prompts", "inter_noises", "height"} <= keys("txt2img", "interpolation")
    assert "prompt" not in keys("txt2img", "interpolation")
    outpaint = keys("inpaint", "outpaint-walk")
    assert {"prompts", "camera_actions", "image"} <= outpaint and "mask" not in outpaint


def test_text_becomes_values_as_the_cli_reads_them() -> None:
    assert parse_value(spec_for("diffusion_steps"), " 4 ") == 4
    assert parse_value(spec_for("guidance_scale"), "7") == 7
    assert parse_value(spec_for("height"), "") is None
    assert parse_value(spec_for("enable_xformers"), "true") is True
    assert parse_value(spec_for("prompt"), "a|b") == "a|b"
    assert parse_value(spec_for("model_id"), "42") == "42"  # text keys stay text
    noises = parse_value(spec_for("inter_noises"), "3\n\nseed.safetensors\n")
    assert noises == [3, "seed.safetensors"]
    assert parse_value(spec_for("inter_prompts"), "a fox|fog\n7") == ["a fox|fog", "7"]
    assert parse_value(spec_for("camera_actions"), "right\nup") == ["right", "up"]
    with pytest.raises(BadInput, match="key 'gpu_id'"):
        parse_value(spec_for("gpu_id"), "[1")


def test_values_become_text_and_back() -> None:
    for key, value in [("inter_noises", [3, "a.pt"]), ("walk_steps", 7), ("prompt", "a|b")]:
        spec = spec_for(key)
        assert parse_value(spec, format_value(spec, value)) == value
    assert format_value(spec_for("image"), "None") == ""
    assert spec_for("interpolation_method").choices == ("slerp", "lerp")
    assert spec_for("strength").hint == "> 0, ≤ 1"
    assert spec_for("rand_seed").placeholder == "random, recorded"


def _record(name: str) -> FrameRecord:
    return FrameRecord(name, 0, name, "image")


def test_progress_and_eta_follow_the_rendering_rate() -> None:
    ticks = itertools.count(0.0, 1.0)  # every look at the clock is one second later
    progress = RunProgress(clock=lambda: next(ticks))
    assert progress.describe() == "frames 0/?"
    progress.update(Started(Path("s"), 4, 0, 2, 2))  # t=0
    progress.update(Step(("a", "b"), 1, 2))  # t=1: half of two frames = 1 frame per second
    assert progress.eta_seconds == pytest.approx(3.0)
    assert progress.describe() == "frames 0/4 · step 1/2 · ETA 0:03"
    progress.update(Step(("a", "b"), 2, 2))  # t=2
    progress.update(FrameReady(0, _record("a"), Path("a.png"), None))  # t=3
    progress.update(FrameReady(1, _record("b"), Path("b.png"), None))  # t=4: 2 frames in 4 s
    assert progress.frames_done == 2 and progress.eta_seconds == pytest.approx(4.0)


def test_frames_found_on_disk_do_not_count_towards_the_rate() -> None:
    ticks = itertools.count(0.0, 1.0)
    progress = RunProgress(clock=lambda: next(ticks))
    progress.update(Started(Path("s"), 3, 0, 1, 1))
    progress.update(FrameReady(0, _record("a"), Path("a.png"), None, from_disk=True))
    progress.update(FrameReady(1, _record("b"), Path("b.png"), None, from_disk=True))
    assert progress.frames_done == 2 and progress.eta_seconds is None


def test_the_grid_gives_previews_the_room_there_is_and_falls_back_to_a_list() -> None:
    assert grid_layout(4, 80, 21) == (4, 19)  # one row of four at 80x24, a column between
    assert grid_layout(4, 120, 37) == (2, 34)  # two rows of two at 120x40
    assert grid_layout(4, 80, 21, aspect=0.5) == (2, 36)  # wide frames: two by two
    assert grid_layout(9, 100, 27)[0] == 5
    assert grid_layout(16, 80, 21)[1] >= MIN_PREVIEW
    assert grid_layout(16, 60, 21)[1] < MIN_PREVIEW  # 16 genes in 60 columns: a list


def test_the_lineage_lists_children_under_their_parent() -> None:
    nodes = ({"id": 0, "name": "difevostep-start", "parent": None, "generation": 0,
              "label": "start"},
             {"id": 1, "name": "difevostep-1_parent-start_gene-2", "parent": 0, "generation": 1,
              "label": "gen 1 · gene 2"},
             {"id": 2, "name": "difevostep-2_parent-2_gene-0", "parent": 1, "generation": 2,
              "label": "gen 2 · gene 0"},
             {"id": 3, "name": "difevostep-3_parent-start_gene-1", "parent": 0, "generation": 3,
              "label": "gen 3 · gene 1"})
    assert lineage_rows(nodes, current=2) == [
        (0, "0: start"), (1, "  1: gen 1 · gene 2"),
        (2, "    2: gen 2 · gene 0 ◀ now"), (3, "  3: gen 3 · gene 1")]
