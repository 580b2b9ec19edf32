"""Frames as data: every experiment describes each frame it makes (name, place in the
story, label, role, parent), the session keeps the records, and a run stopped after
its first frame and resumed ends with exactly the files of an uninterrupted run."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from helpers import only_session, run_cli, write_config
from lse_core.config import build_config
from lse_core.events import FrameReady, Interrupted
from lse_core.run import ExperimentRun
from lse_core.session import Session

TINY = {"model_id": "tiny", "height": 32, "width": 32, "diffusion_steps": 2, "rand_seed": 4,
        "model_identifier": "txt2img"}
# Each experiment small, and what its frames are called in the lists: the labels a
# person reads (one line each in the run view at 80 columns), the roles, the parents.
JOURNEYS = {
    "single-inference": ({"prompt": "a fox", "images_per_prompt": 2},
                         ["image 0", "image 1"], ["image", "image"]),
    # Four images one at a time: a stop after the first always finds work left.
    "visualize-diffusion": ({"prompt": "a fox", "diffusion_steps": 2, "images_per_prompt": 4,
                             "batch_size": 1},
                            [f"image {i} · {what}" for i in range(4)
                             for what in ("step 0", "step 1", "all steps")],
                            ["step", "step", "grid"] * 4),
    "random-walk": ({"prompt": "a fox", "walk_steps": 3, "walk_directions": 2, "batch_size": 1,
                     "noise_rand_walk": True, "prompt_rand_walk": True},
                    [f"dir {d} · {what}" for d in range(2)
                     for what in ("start", "step 1", "step 2", "step 3")],
                    ["start", "step", "step", "step"] * 2),
    "interpolation": ({"inter_prompts": ["a fox", "a bird", "a frog"], "inter_noises": [1, 2, 3],
                       "interpolation_steps": 1, "batch_size": 2},
                      ["key 0", "key 0→1 · 1", "key 1", "key 1→2 · 1", "key 2"],
                      ["keyframe", "between", "keyframe", "between", "keyframe"]),
    "diffevolution": ({"prompt": "a fox", "genes_per_generation": 2, "batch_size": 2},
                      ["start", "gen 1 · gene 0", "gen 1 · gene 1"], ["start", "gene", "gene"]),
    "outpaint-walk": ({"model_identifier": "inpaint", "image": "resources/landscape.png",
                       "mask": "resources/landscape_mask.png", "height": 64, "width": 64,
                       "prompts": ["a shore", "a town"], "frames_per_prompt": [1, 1],
                       "camera_actions": ["right", "up"], "frames_per_cam_action": [1, 1],
                       "num_filler_frames": 2, "batch_size": 1},
                      ["start", "key 0 · filler 1", "key 0", "key 1 · filler 1", "key 1"],
                      ["start", "filler", "keyframe", "filler", "keyframe"]),
}
AUTO = {"diffevolution": ["--auto", "1"]}


def _keys(experiment: str, out: Path) -> dict:
    return {**TINY, "exp_identifier": experiment, "output_path": str(out),
            **JOURNEYS[experiment][0]}


@pytest.fixture(scope="module")
def whole(tmp_path_factory) -> dict[str, Path]:
    """Each journey run once, uninterrupted."""
    sessions = {}
    for experiment in JOURNEYS:
        folder = tmp_path_factory.mktemp(experiment)
        config = write_config(folder / "config.yaml", **_keys(experiment, folder / "s"))
        assert run_cli("run", str(config), *AUTO.get(experiment, [])) == 0
        sessions[experiment] = only_session(folder / "s")
    return sessions


@pytest.mark.parametrize("experiment", JOURNEYS)
def test_every_frame_is_described_as_data(experiment, whole):
    session = whole[experiment]
    records = Session.open(session).frames()
    _, labels, roles = JOURNEYS[experiment]
    assert [r.label for r in records] == labels
    assert [r.role for r in records] == roles
    assert {r.name for r in records} == {p.stem for p in (session / "images").glob("*.png")}
    assert len({r.position for r in records}) == len(records)
    names = {r.name for r in records}
    assert all(r.parent is None or r.parent in names for r in records)
    assert max(len(label) for label in labels) <= 22  # one line in the run view's list


def test_parents_are_the_frames_each_one_was_made_from(whole):
    def parents(experiment: str) -> dict[str, str | None]:
        return {r.label: r.parent for r in Session.open(whole[experiment]).frames()}

    walk = parents("random-walk")
    assert walk["dir 1 · start"] == walk["dir 0 · step 1"] == "output-0_direction-0_randwalkstep-start"
    assert walk["dir 1 · step 3"] == "output-0_direction-1_randwalkstep-start"
    assert parents("diffevolution")["gen 1 · gene 1"] == "difevostep-start"
    outpaint = parents("outpaint-walk")
    assert outpaint["key 0"] == outpaint["key 0 · filler 1"] == "init"
    assert outpaint["key 1"] == outpaint["key 1 · filler 1"] == "frame-0"
    assert parents("visualize-diffusion")["image 1 · step 1"] == "output-1_diffstep-0"


def _pictures(session: Path) -> dict[str, bytes]:
    return {f"{p.parent.name}/{p.name}": p.read_bytes()
            for folder in ("images", "gifs") for p in (session / folder).iterdir()}


def _stopped_after_the_first_frame(experiment: str, out: Path) -> Path:
    run = ExperimentRun(build_config(_keys(experiment, out)))

    async def consume() -> type:
        async for event in run.events():
            if isinstance(event, FrameReady):
                run.cancel()
            last = type(event)
        return last

    assert asyncio.run(consume()) is Interrupted
    return only_session(out)


@pytest.mark.parametrize("experiment", ["visualize-diffusion", "random-walk", "outpaint-walk",
                                        "diffevolution"])
def test_resume_equals_uninterrupted(experiment, whole, tmp_path):
    session = _stopped_after_the_first_frame(experiment, tmp_path / "s")
    assert run_cli("resume", str(session), *AUTO.get(experiment, [])) == 0
    assert _pictures(session) == _pictures(whole[experiment])
    assert Session.open(session).frames() == Session.open(whole[experiment]).frames()
