"""The built-in models: ``tiny`` (trained to draw simple scenes) and ``tiny-random``.

Both have the interface shapes of SD 2.x (77 tokens, embedding width 1024,
4 latent channels, VAE factor 8, a 9-channel inpainting variant) and need no
network. On first use the pipeline folder is assembled — ``tiny`` from the
weights shipped in ``weights/``, ``tiny-random`` from a fixed seed — saved with
``save_pretrained`` into a cache folder, and then loaded through the same
``from_pretrained`` path as a real model.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from . import parts

# Bump when the assembly below changes so stale caches are rebuilt; the
# shipped weights' own digest is part of the folder name too.
TINY_VERSION = "2"
WEIGHTS = Path(__file__).parent / "weights"
RANDOM_SEED = 0


def cache_root() -> Path:
    env = os.environ.get("LSE_CACHE")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_cache_dir("lse"))


def _folder(inpaint: bool, trained: bool) -> Path:
    variant = "inpaint" if inpaint else "txt2img"
    if trained:
        digest = hashlib.sha256((WEIGHTS / "tiny.json").read_bytes()).hexdigest()[:10]
        return cache_root() / f"tiny-v{TINY_VERSION}-{digest}-{variant}"
    return cache_root() / f"tiny-random-v{TINY_VERSION}-{variant}"


def tiny_built(inpaint: bool, trained: bool = True) -> bool:
    """Whether the pipeline folder exists already (its first assembly takes several seconds)."""
    return (_folder(inpaint, trained) / "model_index.json").exists()


def tiny_path(inpaint: bool, trained: bool = True) -> Path:
    """Folder of the tiny pipeline (``trained=False``: tiny-random), assembled on first use."""
    folder = _folder(inpaint, trained)
    if not (folder / "model_index.json").exists():
        _build(folder, inpaint, trained)
    return folder


def _trained_parts(inpaint: bool, text_encoder, tokenizer) -> tuple:
    """The shipped UNet and VAE, after checking the text encoder they were trained with."""
    from safetensors.torch import load_file

    meta = json.loads((WEIGHTS / "tiny.json").read_text())
    probe = parts.text_probe(text_encoder, tokenizer)
    if max(abs(a - b) for a, b in zip(probe, meta["text_probe"])) > 1e-3:
        raise RuntimeError("the tiny model's text encoder no longer matches the one its weights "
                           "were trained with (a changed torch random generator or CLIP model?)")
    unet = parts.unet(inpaint)
    unet.load_state_dict(load_file(str(WEIGHTS / ("unet-inpaint.safetensors" if inpaint else "unet.safetensors"))))
    vae = parts.vae()
    vae.load_state_dict(load_file(str(WEIGHTS / "vae.safetensors")))
    vae.register_to_config(scaling_factor=meta["scaling_factor"])
    return unet, vae


def _build(folder: Path, inpaint: bool, trained: bool) -> None:
    from ..models import quiet_libraries

    quiet_libraries()
    import torch
    from diffusers import StableDiffusionInpaintPipeline, StableDiffusionPipeline

    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=folder.name + ".", dir=folder.parent))
    try:
        tokenizer = parts.tokenizer(staging / "tokenizer-src")
        text_encoder = parts.text_encoder(tokenizer)
        if trained:
            unet, vae = _trained_parts(inpaint, text_encoder, tokenizer)
        else:
            torch.manual_seed(RANDOM_SEED)
            unet, vae = parts.random_unet(inpaint), parts.random_vae()
        pipeline_class = StableDiffusionInpaintPipeline if inpaint else StableDiffusionPipeline
        pipeline = pipeline_class(
            vae=vae,
            text_encoder=text_encoder,
            tokenizer=tokenizer,
            unet=unet,
            scheduler=parts.scheduler(),
            safety_checker=None,
            feature_extractor=None,
            requires_safety_checker=False,
        )
        shutil.rmtree(staging / "tokenizer-src")
        pipeline.save_pretrained(staging)
        if folder.exists():  # another process finished first
            return
        os.replace(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
