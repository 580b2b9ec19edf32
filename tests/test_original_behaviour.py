"""Behaviours that follow the original tool's latest commit (README "Compared with the
original"): interpolation's frame names, and the random walk's rubber band."""

from __future__ import annotations

import json

from PIL import Image

from lse_core.config import load_config
from lse_core.events import FrameReady, Interrupted
from lse_core.session import Session

from helpers import ROOT, SMALL, only_session, pngs, run_cli, run_config, run_in_process

INTERPOLATION = ROOT / "configs/txt2img/interpolation.yaml"
KEYS = [*SMALL, "inter_prompts=['a boat|', 'a storm|']", "inter_noises=[1, 2]",
        "interpolation_steps=4", "batch_size=2"]
NAMES = [f"interpolation_lstitms-0,1_step-{s}" for s in ("start", 1, 2, 3, 4, "end")]
LABELS = ["key 0", *(f"key 0→1 · {s}" for s in range(1, 5)), "key 1"]


def _stop_after_first_frame(out) -> None:
    cfg = load_config(INTERPOLATION, [*KEYS, f"output_path={out}"], model="tiny")
    assert isinstance(run_in_process(cfg, stop_after=FrameReady), Interrupted)


def _as_before_the_rename(session) -> None:
    """The session as lse wrote it while it named frames ``output-0_lstitms-…``."""
    for folder in ("images", "embeddings"):
        for file in (session / folder).iterdir():
            file.rename(file.with_name(file.name.replace("interpolation_", "output-0_")))
    journal = session / "frames.jsonl"
    journal.write_text(journal.read_text().replace("interpolation_lstitms", "output-0_lstitms"))
    manifest = json.loads((session / "session.json").read_text())
    assert manifest.pop("frame_names") == "interpolation"
    (session / "session.json").write_text(json.dumps(manifest))


def test_interpolation_frames_have_the_original_names_and_old_sessions_keep_theirs(tmp_path):
    assert run_config(INTERPOLATION, tmp_path / "whole", *KEYS[len(SMALL):]) == 0
    whole = only_session(tmp_path / "whole")
    assert sorted(pngs(whole)) == sorted(f"{name}.png" for name in NAMES)
    assert [(r.name, r.label) for r in Session.open(whole).frames()] == list(zip(NAMES, LABELS))

    _stop_after_first_frame(tmp_path / "old")
    old = only_session(tmp_path / "old")
    _as_before_the_rename(old)
    assert run_cli("resume", str(old)) == 0
    # The resume found the frames under their old names and made the rest under them too.
    renamed = {name.replace("output-0_", "interpolation_"): data
               for name, data in pngs(old).items()}
    assert all(name.startswith("output-0_lstitms") for name in pngs(old))
    assert renamed == pngs(whole)
    old_names = [n.replace("interpolation_", "output-0_") for n in NAMES]
    assert [(r.name, r.label) for r in Session.open(old).frames()] == list(zip(old_names, LABELS))


def test_the_rubber_band_goes_out_to_the_last_step_and_back_to_the_start(out):
    steps, directions, frame_ms = 2, 2, 100
    assert run_config(ROOT / "configs/txt2img/random_walk.yaml", out, f"walk_steps={steps}",
                      f"walk_directions={directions}", f"gif_frame_dur={frame_ms}") == 0
    session = only_session(out)
    (gif,) = [m for m in Session.open(session).stored_media() if m["name"] == "output-0"]
    band = []
    for d in range(directions):
        out_there = [f"output-0_direction-{d}_randwalkstep-{s}" for s in ("start", 1, 2)]
        band += out_there + out_there[::-1]
    assert gif["frames"] == band  # 2·(walk_steps + 1) frames per direction
    with Image.open(session / "gifs" / "output-0.gif") as image:
        shown = sum(image.seek(i) or image.info["duration"] for i in range(image.n_frames))
    assert shown == len(band) * frame_ms


def test_a_noise_several_frames_share_is_scaled_for_each_frame_not_compounded(out):
    # Euler's init_noise_sigma is far from 1; the original scales the shared noise in place.
    from safetensors.torch import load_file

    assert run_config(INTERPOLATION, out, "inter_prompts=['a boat|', 'a storm|']",
                      "inter_noises=[1]", "interpolation_steps=2", "batch_size=2",
                      "scheduler=EulerDiscreteScheduler") == 0
    session = only_session(out)
    noises = [load_file(session / "embeddings" / f"{r.name}.safetensors")["latent_noise"]
              for r in Session.open(session).frames()]
    assert len(noises) == 4 and all(n.equal(noises[0]) for n in noises)
    assert 0.5 < noises[0].std() < 2  # the seed's unit noise, not scaled by σ ≈ 14.6
