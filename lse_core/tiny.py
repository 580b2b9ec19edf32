"""The built-in ``tiny`` model: random weights with the interface shapes of SD 2.x.

It exists so that every experiment runs and is tested on any machine without
downloading weights. It is built deterministically, saved with
``save_pretrained`` into a cache folder and then loaded through the same
``from_pretrained`` path as a real model.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

# Bump when the architecture below changes so stale caches are rebuilt.
TINY_VERSION = "1"
TEXT_WIDTH = 1024
TOKENS = 77
BUILD_SEED = 0


def cache_root() -> Path:
    env = os.environ.get("LSE_CACHE")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_cache_dir("lse"))


def tiny_path(inpaint: bool) -> Path:
    """Folder of the tiny pipeline, built on first use."""
    variant = "inpaint" if inpaint else "txt2img"
    folder = cache_root() / f"tiny-v{TINY_VERSION}-{variant}"
    if not (folder / "model_index.json").exists():
        _build(folder, inpaint)
    return folder


def _byte_alphabet() -> list[str]:
    # The printable stand-in characters that byte-level BPE (CLIP, GPT-2) uses
    # for the 256 byte values; tokenizers has no public helper for this list.
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    keep += list(range(ord("®"), ord("ÿ") + 1))
    chars, extra = [], 0
    for byte in range(256):
        if byte in keep:
            chars.append(chr(byte))
        else:
            chars.append(chr(256 + extra))
            extra += 1
    return chars


def _write_tokenizer_files(folder: Path) -> None:
    """A character-level CLIP vocabulary: every byte, alone or ending a word."""
    alphabet = _byte_alphabet()
    tokens = alphabet + [c + "</w>" for c in alphabet] + ["<|startoftext|>", "<|endoftext|>"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}))
    (folder / "merges.txt").write_text("#version: 0.2\n")


def _build(folder: Path, inpaint: bool) -> None:
    from .models import quiet_libraries

    quiet_libraries()
    import torch
    from diffusers import (
        AutoencoderKL,
        DPMSolverMultistepScheduler,
        StableDiffusionInpaintPipeline,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    torch.manual_seed(BUILD_SEED)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=folder.name + ".", dir=folder.parent))
    try:
        tok_dir = staging / "tokenizer-src"
        _write_tokenizer_files(tok_dir)
        tokenizer = CLIPTokenizer(
            vocab=str(tok_dir / "vocab.json"), merges=str(tok_dir / "merges.txt")
        )
        tokenizer.model_max_length = TOKENS
        text_encoder = CLIPTextModel(
            CLIPTextConfig(
                vocab_size=len(tokenizer),
                hidden_size=TEXT_WIDTH,
                intermediate_size=512,
                num_hidden_layers=2,
                num_attention_heads=8,
                max_position_embeddings=TOKENS,
                bos_token_id=tokenizer.bos_token_id,
                eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id,
            )
        )
        unet = UNet2DConditionModel(
            sample_size=96,
            in_channels=9 if inpaint else 4,
            out_channels=4,
            block_out_channels=(32, 64),
            layers_per_block=1,
            down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
            cross_attention_dim=TEXT_WIDTH,
            attention_head_dim=(4, 8),
            use_linear_projection=True,
            norm_num_groups=16,
        )
        # Four resolution levels give the SD 2.x VAE scale factor of 8.
        vae = AutoencoderKL(
            in_channels=3,
            out_channels=3,
            latent_channels=4,
            block_out_channels=(16, 16, 32, 32),
            down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4,
            layers_per_block=1,
            norm_num_groups=16,
            sample_size=768,
        )
        scheduler = DPMSolverMultistepScheduler(
            beta_start=0.00085,
            beta_end=0.012,
            beta_schedule="scaled_linear",
            num_train_timesteps=1000,
            steps_offset=1,
            prediction_type="epsilon",
        )
        pipeline_class = StableDiffusionInpaintPipeline if inpaint else StableDiffusionPipeline
        pipeline = pipeline_class(
            vae=vae,
            text_encoder=text_encoder,
            tokenizer=tokenizer,
            unet=unet,
            scheduler=scheduler,
            safety_checker=None,
            feature_extractor=None,
            requires_safety_checker=False,
        )
        shutil.rmtree(tok_dir)
        pipeline.save_pretrained(staging)
        if folder.exists():  # another process finished first
            return
        os.replace(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
