"""Interpolation's in-betweens: evenly spaced in picture change (perceptual spacing) and
branched from their neighbours' latents (latent blending), each keeping the frame count,
resuming byte for byte, and counting its UNet work in session.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from helpers import only_session, run_cli, run_in_process
from lse_core.config import build_config
from lse_core.events import Finished, FrameReady, Interrupted, Step
from lse_core.experiments.transitions import picture_distance
from lse_core.session import Session

STEPS, BETWEEN, KEYS = 4, 3, 3
JOURNEY = {
    "model_identifier": "txt2img", "exp_identifier": "interpolation", "model_id": "tiny",
    "height": 64, "width": 64, "diffusion_steps": STEPS, "interpolation_steps": BETWEEN,
    "rand_seed": 0, "batch_size": 2, "inter_noises": [5],
    "inter_prompts": ["a red circle on a white background", "a blue square on a white background",
                      "a green triangle on a black background"],
}
FRAMES = (KEYS - 1) * (BETWEEN + 1) + 1
MODES = {"full": {}, "perceptual": {"interpolation_spacing": "perceptual"},
         "blend": {"transition": "blend"}}


def _run(out: Path, stop_after: type | None = None, count: int = 1, **keys) -> Path:
    """Run the journey in this process; ``stop_after``: stop at the ``count``-th such event."""
    last = run_in_process(build_config({**JOURNEY, "output_path": str(out), **keys}),
                          stop_after=stop_after, count=count)
    assert type(last) is (Interrupted if stop_after else Finished), last
    return only_session(out)


@pytest.fixture(scope="module")
def journeys(tmp_path_factory) -> dict[str, Path]:
    """Each mode's uninterrupted session."""
    return {mode: _run(tmp_path_factory.mktemp(mode), **keys) for mode, keys in MODES.items()}


def story(session: Path) -> list:
    return Session.open(session).frames()


def distances(session: Path) -> list[float]:
    images = [Image.open(session / "images" / f"{record.name}.png") for record in story(session)]
    return [picture_distance(a, b) for a, b in zip(images, images[1:])]


def manifest(session: Path) -> dict:
    return json.loads((session / "session.json").read_text())


def ratio(session: Path) -> float:
    found = distances(session)
    return max(found) / min(found)


def test_perceptual_spacing_evens_out_the_neighbour_distances(journeys) -> None:
    uniform, perceptual = journeys["full"], journeys["perceptual"]
    assert len(story(perceptual)) == len(story(uniform)) == FRAMES
    print(f"largest/smallest neighbour distance: uniform {ratio(uniform):.2f}, "
          f"perceptual {ratio(perceptual):.2f}")
    assert ratio(perceptual) < ratio(uniform)
    ts = [record.t for record in story(perceptual)]
    assert ts == sorted(ts) and ts[0] == 0 and ts[-1] == KEYS - 1
    assert ts != [record.t for record in story(uniform)]  # placed, not uniform


def test_blend_costs_at_most_half_and_jumps_no_more_than_full(journeys) -> None:
    full, blend = journeys["full"], journeys["blend"]
    assert len(story(blend)) == FRAMES
    evaluations = manifest(full)["unet_evaluations"], manifest(blend)["unet_evaluations"]
    print(f"UNet evaluations: full {evaluations[0]}, blend {evaluations[1]}; largest neighbour "
          f"distance: full {max(distances(full)):.3f}, blend {max(distances(blend)):.3f}")
    assert 2 * evaluations[1] <= evaluations[0]
    assert max(distances(blend)) <= max(distances(full))
    # Story order is the order of t, and the GIF shows the frames in it.
    ts = [record.t for record in story(blend)]
    assert ts == sorted(ts) and len(set(ts)) == FRAMES
    gif = Image.open(blend / "gifs" / "output-0.gif")
    assert gif.n_frames == FRAMES


def test_unet_evaluations_are_frames_times_steps_times_two_with_guidance(journeys) -> None:
    per_frame = STEPS * 2  # guidance 7.5: the conditional and unconditional rows
    assert manifest(journeys["full"])["unet_evaluations"] == FRAMES * per_frame
    coarse = FRAMES * (STEPS // 2) * 2  # perceptual's coarse pass: half the steps, not saved
    assert manifest(journeys["perceptual"])["unet_evaluations"] == FRAMES * per_frame + coarse
    assert len(list((journeys["perceptual"] / "images").glob("*.png"))) == FRAMES


def _same_files(session: Path, reference: Path) -> None:
    for folder in ("images", "embeddings", "gifs"):
        names = sorted(p.name for p in (reference / folder).iterdir())
        assert names == sorted(p.name for p in (session / folder).iterdir()), folder
        for name in names:
            assert (session / folder / name).read_bytes() == (reference / folder / name).read_bytes(), name
    assert story(session) == story(reference)


@pytest.mark.parametrize(("mode", "stop_after", "count"), [
    ("perceptual", Step, 1),  # during the coarse pass
    ("perceptual", FrameReady, 2),
    ("blend", FrameReady, 4),  # the keyframes and one in-between saved
])
def test_a_stopped_journey_resumes_to_the_uninterrupted_bytes(journeys, tmp_path, mode, stop_after,
                                                             count) -> None:
    session = _run(tmp_path, stop_after, count, **MODES[mode])
    assert manifest(session)["state"] == "interrupted"
    assert len(list((session / "images").glob("*.png"))) < FRAMES
    assert run_cli("resume", str(session)) == 0
    _same_files(session, journeys[mode])
    assert manifest(session)["unet_evaluations"] == manifest(journeys[mode])["unet_evaluations"]
