"""Files written by the original tool with SD 2.1 load into lse (skipped without shared/compat)."""

from __future__ import annotations

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from helpers import COMPAT, ROOT, only_session, run_config

pytestmark = pytest.mark.skipif(not COMPAT.is_dir(), reason="shared/compat not present")


@pytest.mark.parametrize("name", ["txt2img_output-0_diffstep-25.pt",
                                  "img2img_output-0_diffstep-25.pt",
                                  "inpaint_output-1_diffstep-25.pt"])
def test_original_pt_reads_as_tensors(name):
    from lse_core.latents import load_embedding

    data = load_embedding(COMPAT / name)
    assert data["prompt_embed"].shape == (2, 77, 1024)
    assert data["latent_noise"].shape == (1, 4, 96, 96)
    assert data["prompt_embed"].dtype == torch.float32


def test_original_embedding_drives_a_tiny_render(out):
    source = COMPAT / "txt2img_output-0_diffstep-25.pt"
    assert run_config(ROOT / "configs/txt2img/single_inference.yaml", out,
                      f"load_prompt_embeds={source}", f"load_latent_noise={source}",
                      "diffusion_steps=1") == 0
    session = only_session(out)
    images = list((session / "images").glob("*.png"))
    assert len(images) == 1  # the file holds one noise tensor, so one image
    with Image.open(images[0]) as image:
        assert image.size == (768, 768)  # the noise fixes the size, not height/width
    saved = load_file(session / "embeddings" / images[0].name.replace(".png", ".safetensors"))
    original = torch.load(source, weights_only=True)
    assert torch.equal(saved["prompt_embed"], original["prompt_embed"].float())
    assert torch.equal(saved["latent_noise"], original["latent_noise"].float())


def test_original_image_and_mask_work_for_inpaint(out):
    assert run_config(ROOT / "configs/inpaint/single_inference.yaml", out,
                      f"image={COMPAT / 'img2img_output-0_diffstep-25.png'}",
                      f"mask={COMPAT / 'astronaut_mask.png'}", "images_per_prompt=1") == 0
    assert len(list((only_session(out) / "images").glob("*.png"))) == 1
