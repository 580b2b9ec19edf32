"""The tiny model's components, with the interface shapes of SD 2.x.

Two sets share one tokenizer, text encoder and scheduler: ``tiny`` (a UNet and
VAE small enough to train on a CPU in minutes, weights shipped in
``weights/``) and ``tiny-random`` (the original random-weight model, kept for
its speed and as a model whose images mean nothing).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from diffusers import AutoencoderKL, DPMSolverMultistepScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

TEXT_WIDTH = 1024
TOKENS = 77
# The text encoder is never trained: the trained UNets learned to read exactly
# these weights, so they are drawn from this seed by our own rule below rather
# than by the library's initialiser, which may change between versions.
TEXT_SEED = 0
# Latents per side at the trained model's native size (64 px with the ×8 VAE).
NATIVE_LATENT = 8


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


def _bpe(word: str, merges: list[tuple[str, str]]) -> list[str]:
    """Byte-pair encoding of one word, as CLIP applies it: lowest-ranked pair first."""
    ranks = {pair: rank for rank, pair in enumerate(merges)}
    pieces = list(word[:-1]) + [word[-1] + "</w>"]
    while len(pieces) > 1:
        rank, index = min((ranks.get(pair, math.inf), i) for i, pair in enumerate(zip(pieces, pieces[1:])))
        if rank == math.inf:
            break
        pieces[index : index + 2] = [pieces[index] + pieces[index + 1]]
    return pieces


def _word_merges(words: tuple[str, ...]) -> list[tuple[str, str]]:
    """Merges that make each word one token, as real CLIP's vocabulary has common words:
    tokenize with the merges so far, join the first two pieces, repeat until whole."""
    merges: list[tuple[str, str]] = []
    for word in words:
        while len(pieces := _bpe(word, merges)) > 1:
            merges.append((pieces[0], pieces[1]))
    return merges


def tokenizer(folder: Path) -> CLIPTokenizer:
    """A CLIP tokenizer over bytes, with the tiny dataset's words as whole tokens; files go in ``folder``.

    Whole words keep captions of the same form aligned token by token (``a red
    circle …`` and ``a blue square …``), so interpolating their embeddings
    mixes word with word; other text is read letter by letter.
    """
    from transformers import CLIPTokenizer

    from .scenes import WORDS

    alphabet = _byte_alphabet()
    merges = _word_merges(WORDS)
    tokens = alphabet + [c + "</w>" for c in alphabet] + [a + b for a, b in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
    result = CLIPTokenizer(vocab=str(folder / "vocab.json"), merges=str(folder / "merges.txt"))
    result.model_max_length = TOKENS
    return result


@torch.no_grad()
def text_encoder(tok: CLIPTokenizer) -> CLIPTextModel:
    """A 2-layer CLIP text encoder of width 1024 with seeded random weights.

    Embeddings are unit normal and linear layers scaled by 1/sqrt(fan_in), so
    every layer keeps each character's identity and mixes in its context at a
    similar strength; norms start as the identity and biases at zero.
    """
    from transformers import CLIPTextConfig, CLIPTextModel

    model = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tok),
            hidden_size=TEXT_WIDTH,
            intermediate_size=512,
            num_hidden_layers=2,
            num_attention_heads=8,
            max_position_embeddings=TOKENS,
            bos_token_id=tok.bos_token_id,
            eos_token_id=tok.eos_token_id,
            pad_token_id=tok.pad_token_id,
        )
    )
    generator = torch.Generator("cpu").manual_seed(TEXT_SEED)
    for name, param in sorted(model.named_parameters()):
        if "layer_norm" in name:
            param.fill_(1.0 if name.endswith("weight") else 0.0)
        elif name.endswith("bias"):
            param.zero_()
        elif "embedding" in name:
            param.copy_(torch.randn(param.shape, generator=generator))
        else:
            param.copy_(torch.randn(param.shape, generator=generator) / math.sqrt(param.shape[1]))
    return model.eval()


PROBE_CAPTION = "a red circle on a white background"


@torch.no_grad()
def text_probe(encoder: CLIPTextModel, tok: CLIPTokenizer) -> list[float]:
    """A few numbers of one caption's embedding, stored with the trained weights: the
    UNets only work with the text encoder that gives these same numbers."""
    ids = tok([PROBE_CAPTION], padding="max_length", max_length=TOKENS, return_tensors="pt").input_ids
    hidden = encoder(ids)[0][0]
    return [round(value, 5) for value in hidden[[1, 20, 60], :4].flatten().tolist()]


def scheduler() -> DPMSolverMultistepScheduler:
    """Stable Diffusion 2.x base's noise schedule, so every diffusers scheduler fits."""
    from diffusers import DPMSolverMultistepScheduler

    return DPMSolverMultistepScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        num_train_timesteps=1000,
        steps_offset=1,
        prediction_type="epsilon",
    )


def unet(inpaint: bool) -> UNet2DConditionModel:
    """The trained model's UNet: two levels over 8×8 latents, cross-attention at both.

    The 1024-wide text embedding is projected once to 128 wide
    (``text_proj``) instead of in every attention layer, which keeps the
    weights a few MB and a training step cheap.
    """
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        sample_size=NATIVE_LATENT,
        in_channels=9 if inpaint else 4,
        out_channels=4,
        block_out_channels=(64, 96),
        layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D",) * 2,
        up_block_types=("CrossAttnUpBlock2D",) * 2,
        encoder_hid_dim=TEXT_WIDTH,
        encoder_hid_dim_type="text_proj",
        cross_attention_dim=128,
        attention_head_dim=(4, 6),
        use_linear_projection=True,
        norm_num_groups=16,
    )


def vae() -> AutoencoderKL:
    """The trained model's VAE.

    No attention in the middle block, so any multiple of 8 decodes at the same
    cost per pixel.
    """
    return _sd_shaped_vae(
        block_out_channels=(16, 32, 32, 32),
        # Few groups: with one channel per group, normalisation would erase a
        # flat background's colour (the per-channel mean).
        norm_num_groups=4,
        sample_size=NATIVE_LATENT * 8,
        mid_block_add_attention=False,
    )


def _sd_shaped_vae(**architecture) -> AutoencoderKL:
    """A VAE with SD's interface: RGB in and out, four levels for the ×8 scale, 4 latent channels."""
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        layers_per_block=1,
        **architecture,
    )


def random_unet(inpaint: bool) -> UNet2DConditionModel:
    """``tiny-random``'s UNet (the original tiny model's architecture)."""
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
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


def random_vae() -> AutoencoderKL:
    """``tiny-random``'s VAE (the original tiny model's architecture)."""
    return _sd_shaped_vae(block_out_channels=(16, 16, 32, 32), norm_num_groups=16, sample_size=768)
