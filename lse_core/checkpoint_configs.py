"""The diffusers configs of the single-file checkpoint types lse loads, shipped with lse.

A web-UI checkpoint holds weights only; diffusers' single-file loader needs the
pipeline's configs beside them. These are the configs of the reference models
(SD 1.5, SD 2.1 768-v, SD 2.1 512 base, SD 2 inpainting, SDXL base 1.0, SDXL
inpainting 0.1), so no network is needed. On first use a type's folder is written
into lse's cache as diffusers lays one out, with CLIP's tokenizer vocabulary built
from the BPE merges file in ``clip/`` (see clip/NOTICE.md).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BPE_FILE = Path(__file__).parent / "clip" / "bpe_simple_vocab_16e6.txt.gz"
# CLIP's vocabulary: 256 byte symbols, each also as a word end, then the merges, then
# the start and end tokens: 49408 in all.
CLIP_MERGES = 49152 - 256 - 2

_SCHEDULE = {"beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear",
             "num_train_timesteps": 1000, "set_alpha_to_one": False, "skip_prk_steps": True,
             "steps_offset": 1, "clip_sample": False, "trained_betas": None}
PNDM_EPSILON = {"_class_name": "PNDMScheduler", **_SCHEDULE, "prediction_type": "epsilon"}
DDIM_V = {"_class_name": "DDIMScheduler", **_SCHEDULE, "prediction_type": "v_prediction"}
EULER_XL = {"_class_name": "EulerDiscreteScheduler", **_SCHEDULE, "prediction_type": "epsilon",
            "interpolation_type": "linear", "timestep_spacing": "leading",
            "use_karras_sigmas": False, "sample_max_value": 1.0}

_UNET = {"_class_name": "UNet2DConditionModel", "act_fn": "silu", "center_input_sample": False,
         "downsample_padding": 1, "flip_sin_to_cos": True, "freq_shift": 0, "in_channels": 4,
         "out_channels": 4, "layers_per_block": 2, "mid_block_scale_factor": 1,
         "norm_eps": 1e-05, "norm_num_groups": 32, "dual_cross_attention": False,
         "only_cross_attention": False, "num_class_embeds": None}
SD1_UNET = {**_UNET, "sample_size": 64, "block_out_channels": [320, 640, 1280, 1280],
            "down_block_types": ["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"],
            "up_block_types": ["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3,
            "attention_head_dim": 8, "cross_attention_dim": 768, "use_linear_projection": False,
            "upcast_attention": False}
SD2_UNET = {**SD1_UNET, "attention_head_dim": [5, 10, 20, 20], "cross_attention_dim": 1024,
            "use_linear_projection": True}
SDXL_UNET = {**_UNET, "sample_size": 128, "block_out_channels": [320, 640, 1280],
             "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
             "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
             "attention_head_dim": [5, 10, 20], "cross_attention_dim": 2048,
             "transformer_layers_per_block": [1, 2, 10], "use_linear_projection": True,
             "upcast_attention": False, "addition_embed_type": "text_time",
             "addition_embed_type_num_heads": 64, "addition_time_embed_dim": 256,
             "projection_class_embeddings_input_dim": 2816}

SD_VAE = {"_class_name": "AutoencoderKL", "act_fn": "silu", "in_channels": 3, "out_channels": 3,
          "latent_channels": 4, "block_out_channels": [128, 256, 512, 512],
          "down_block_types": ["DownEncoderBlock2D"] * 4,
          "up_block_types": ["UpDecoderBlock2D"] * 4, "layers_per_block": 2,
          "norm_num_groups": 32, "sample_size": 512, "scaling_factor": 0.18215}
SDXL_VAE = {**SD_VAE, "sample_size": 1024, "scaling_factor": 0.13025, "force_upcast": True}

# The ids are those of the reference models' configs (2 as the end token makes the pooled
# output the end token's, as the original CLIP computes it).
_TEXT = {"model_type": "clip_text_model", "max_position_embeddings": 77, "vocab_size": 49408,
         "layer_norm_eps": 1e-05, "bos_token_id": 0, "eos_token_id": 2, "pad_token_id": 1,
         "attention_dropout": 0.0, "dropout": 0.0, "initializer_factor": 1.0,
         "initializer_range": 0.02}
CLIP_L = {**_TEXT, "architectures": ["CLIPTextModel"], "hidden_act": "quick_gelu",
          "hidden_size": 768, "intermediate_size": 3072, "num_attention_heads": 12,
          "num_hidden_layers": 12, "projection_dim": 768}
# SD 2.x reads OpenCLIP ViT-H's next-to-last layer: the diffusers model stops there.
OPENCLIP_H = {**_TEXT, "architectures": ["CLIPTextModel"], "hidden_act": "gelu",
              "hidden_size": 1024, "intermediate_size": 4096, "num_attention_heads": 16,
              "num_hidden_layers": 23, "projection_dim": 512}
OPENCLIP_BIGG = {**_TEXT, "architectures": ["CLIPTextModelWithProjection"], "hidden_act": "gelu",
                 "hidden_size": 1280, "intermediate_size": 5120, "num_attention_heads": 20,
                 "num_hidden_layers": 32, "projection_dim": 1280}

# OpenAI's CLIP tokenizer pads with its end token; the OpenCLIP ones of SD 2.x and SDXL's
# second encoder pad with "!" (token 0).
CLIP_PAD = "<|endoftext|>"
OPENCLIP_PAD = "!"


@dataclass(frozen=True)
class CheckpointType:
    """One kind of web-UI checkpoint and the diffusers pipeline it becomes."""

    description: str
    pipeline: str
    unet: dict[str, Any]
    vae: dict[str, Any]
    scheduler: dict[str, Any]
    # (component name, text encoder config, the pad token of its tokenizer)
    text_encoders: tuple[tuple[str, dict[str, Any], str], ...]
    pipeline_options: dict[str, Any] = field(default_factory=dict)


_SD_OPTIONS = {"requires_safety_checker": False}
_SDXL_OPTIONS = {"force_zeros_for_empty_prompt": True}
TYPES: dict[str, CheckpointType] = {
    "sd1": CheckpointType("SD 1.x", "StableDiffusionPipeline", SD1_UNET, SD_VAE, PNDM_EPSILON,
                          (("text_encoder", CLIP_L, CLIP_PAD),), _SD_OPTIONS),
    "sd1-inpaint": CheckpointType("SD 1.x inpainting", "StableDiffusionInpaintPipeline",
                                  {**SD1_UNET, "in_channels": 9}, SD_VAE, PNDM_EPSILON,
                                  (("text_encoder", CLIP_L, CLIP_PAD),), _SD_OPTIONS),
    "sd2-v": CheckpointType("SD 2.x 768-v (v-prediction)", "StableDiffusionPipeline",
                            {**SD2_UNET, "sample_size": 96, "upcast_attention": True},
                            {**SD_VAE, "sample_size": 768}, DDIM_V,
                            (("text_encoder", OPENCLIP_H, OPENCLIP_PAD),), _SD_OPTIONS),
    "sd2-base": CheckpointType("SD 2.x 512 base (ε-prediction)", "StableDiffusionPipeline",
                               SD2_UNET, SD_VAE, PNDM_EPSILON,
                               (("text_encoder", OPENCLIP_H, OPENCLIP_PAD),), _SD_OPTIONS),
    "sd2-inpaint": CheckpointType("SD 2.x inpainting", "StableDiffusionInpaintPipeline",
                                  {**SD2_UNET, "in_channels": 9}, SD_VAE, PNDM_EPSILON,
                                  (("text_encoder", OPENCLIP_H, OPENCLIP_PAD),), _SD_OPTIONS),
    "sdxl": CheckpointType("SDXL", "StableDiffusionXLPipeline", SDXL_UNET, SDXL_VAE, EULER_XL,
                           (("text_encoder", CLIP_L, CLIP_PAD),
                            ("text_encoder_2", OPENCLIP_BIGG, OPENCLIP_PAD)), _SDXL_OPTIONS),
    "sdxl-inpaint": CheckpointType("SDXL inpainting", "StableDiffusionXLInpaintPipeline",
                                   {**SDXL_UNET, "in_channels": 9}, SDXL_VAE, EULER_XL,
                                   (("text_encoder", CLIP_L, CLIP_PAD),
                                    ("text_encoder_2", OPENCLIP_BIGG, OPENCLIP_PAD)),
                                   {**_SDXL_OPTIONS, "requires_aesthetics_score": False}),
}


def config_folder(name: str, cache: Path) -> Path:
    """The diffusers config folder of checkpoint type ``name`` (written once under ``cache``)."""
    # Named by this module's digest: a folder written by another version of lse is not reused.
    digest = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:10]
    folder = cache / "checkpoint-configs" / f"{name}-{digest}"
    if (folder / "model_index.json").is_file():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{name}.", dir=folder.parent))
    try:
        write_config_folder(TYPES[name], staging)
        if not folder.exists():  # another process may have finished first
            os.replace(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def write_config_folder(kind: CheckpointType, folder: Path) -> None:
    """model_index.json and each component's config (and tokenizer files), no weights."""
    index: dict[str, Any] = {"_class_name": kind.pipeline, **kind.pipeline_options,
                             "unet": ["diffusers", "UNet2DConditionModel"],
                             "vae": ["diffusers", "AutoencoderKL"],
                             "scheduler": ["diffusers", kind.scheduler["_class_name"]]}
    if kind.pipeline.startswith("StableDiffusionXL"):
        index["image_encoder"] = index["feature_extractor"] = [None, None]
    else:
        index["safety_checker"] = index["feature_extractor"] = index["image_encoder"] = [None, None]
    _write_json(folder / "unet" / "config.json", kind.unet)
    _write_json(folder / "vae" / "config.json", kind.vae)
    _write_json(folder / "scheduler" / "scheduler_config.json", kind.scheduler)
    for encoder, config, pad in kind.text_encoders:
        tokenizer = encoder.replace("text_encoder", "tokenizer")
        index[encoder] = ["transformers", config["architectures"][0]]
        index[tokenizer] = ["transformers", "CLIPTokenizer"]
        _write_json(folder / encoder / "config.json", config)
        write_clip_tokenizer(folder / tokenizer, pad)
    _write_json(folder / "model_index.json", index)


def write_clip_tokenizer(folder: Path, pad_token: str) -> None:
    """CLIP's tokenizer as transformers reads it: vocab.json, merges.txt and its settings."""
    # Imported here: the module pulls in torch, which only a model load needs.
    from .tiny.parts import _byte_alphabet

    lines = gzip.decompress(BPE_FILE.read_bytes()).decode("utf-8").split("\n")
    merges = lines[1 : 1 + CLIP_MERGES]  # the first line names the file's format
    # CLIP numbers the byte symbols in code point order (printable bytes first).
    alphabet = sorted(_byte_alphabet())
    tokens = alphabet + [c + "</w>" for c in alphabet] + [m.replace(" ", "") for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)},
                                                  ensure_ascii=False), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n",
                                       encoding="utf-8")
    special = {"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>",
               "unk_token": "<|endoftext|>", "pad_token": pad_token}
    _write_json(folder / "special_tokens_map.json", special)
    _write_json(folder / "tokenizer_config.json", {
        "tokenizer_class": "CLIPTokenizer", "model_max_length": 77, "do_lower_case": True,
        "errors": "replace", "add_prefix_space": False, **special})


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
