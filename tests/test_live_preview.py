"""Live step previews: each frame's latents as a picture at every step in the TUI, from a
latents→RGB map fitted once per VAE and cached; headless runs do no preview work."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from lse_core import live_preview
from lse_core.config import build_config
from lse_core.events import Finished, StepPreview
from lse_core.live_preview import preview_for
from lse_core.models import load_model
from lse_core.run import ExperimentRun
from screens.preview import FramePreview
from screens.run_view import RunScreen
from test_tui_support import make_app, run_to_end

TINY = {"model_id": "tiny", "height": 64, "width": 64, "diffusion_steps": 4, "rand_seed": 3,
        "model_identifier": "txt2img", "exp_identifier": "single-inference",
        "prompt": "a red circle on a white background"}
CPU = torch.device("cpu")


async def _shown_live(out: Path, monkeypatch, **keys) -> list[tuple[str, bytes]]:
    """Run in the TUI and return every live picture the preview showed (caption, pixels)."""
    shown: list[tuple[str, bytes]] = []
    show_live = FramePreview.show_live

    def record(self, caption, image):
        shown.append((caption, image.tobytes()))
        show_live(self, caption, image)

    monkeypatch.setattr(FramePreview, "show_live", record)
    monkeypatch.setattr(RunScreen, "LIVE_INTERVAL", 0)  # draw every step, however fast
    app = make_app(out)
    async with app.run_test(size=(80, 24)) as pilot:
        app.start_run(build_config({**TINY, "output_path": str(out), **keys}),
                      on_bad_input=lambda message: None)
        await run_to_end(pilot)
        assert isinstance(pilot.app.screen.final, Finished), pilot.app.screen.final
    return shown


async def test_the_run_view_shows_the_frame_change_between_its_steps(out, monkeypatch) -> None:
    shown = await _shown_live(out, monkeypatch)
    captions = [caption for caption, _ in shown]
    # One frame of four steps: a live picture after each step but the last (by then
    # the finished frame is on its way), each different from the one before.
    assert captions[:3] == [f"live · step {s}/4 · 1 frame" for s in (1, 2, 3)]
    pictures = [pixels for _, pixels in shown]
    assert all(a != b for a, b in zip(pictures, pictures[1:]))


async def test_live_preview_off_in_the_form_shows_none(out, monkeypatch) -> None:
    assert await _shown_live(out, monkeypatch, live_preview=False) == []


def test_a_headless_run_emits_no_preview(out) -> None:
    run = ExperimentRun(build_config({**TINY, "output_path": str(out), "diffusion_steps": 2}))

    async def kinds() -> set[type]:
        return {type(event) async for event in run.events()}

    seen = asyncio.run(kinds())
    assert Finished in seen and StepPreview not in seen


@pytest.mark.parametrize("family", ["tiny", "sd1", "sd2", "sdxl"])
def test_every_family_gets_a_map_fitted_once_and_cached(family, family_model, tmp_path) -> None:
    model_id = "tiny" if family == "tiny" else str(family_model(family))
    model = load_model(model_id, False, CPU, torch.float32)
    live_preview._FITTED.pop(id(model), None)
    preview = preview_for(model, tmp_path)
    [cached] = (tmp_path / "live-preview").glob("*.json")
    latents = torch.randn(2, model.latent_channels, 5, 7)
    images = preview.images(latents)
    assert [image.size for image in images] == [(7, 5), (7, 5)]
    # A later load reads the cache: the same map, nothing fitted again.
    live_preview._FITTED.pop(id(model), None)
    stored = json.loads(cached.read_text())
    stored["bias"] = [0.5, 0.5, 0.5]
    cached.write_text(json.dumps(stored))
    assert preview_for(model, tmp_path).bias.tolist() == [0.5, 0.5, 0.5]


def test_tiny_map_predicts_the_vae_better_than_any_one_colour(tmp_path) -> None:
    """On latents it was not fitted on, the map's pictures are closer to what the VAE
    decodes than the best constant colour is (the map is fitted, not made up)."""
    import torch.nn.functional as F

    model = load_model("tiny", False, CPU, torch.float32)
    live_preview._FITTED.pop(id(model), None)
    preview = preview_for(model, tmp_path)
    scale = model.vae.config.scaling_factor
    with torch.no_grad():
        latents = model.vae.encode(live_preview.colour_fields(4, 64, seed=11)).latent_dist.mean * scale
        decoded = model.vae.decode(latents / scale, return_dict=False)[0]
    truth = ((F.avg_pool2d(decoded, 8).clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 1).numpy()
    shown = np.stack([np.asarray(image, dtype=float) / 255 for image in preview.images(latents)])
    constant = np.abs(truth - truth.mean((0, 1, 2))).mean()
    assert np.abs(shown - truth).mean() < constant
