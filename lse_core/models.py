"""Loading Stable Diffusion 2.x components (hub id, local folder, ``tiny`` or ``tiny-random``) once per process."""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .config import resolve_scheduler_name
from .errors import BadInput, shorten
from .preflight import TINY_MODELS, check_device_name, check_model_id

log = logging.getLogger(__name__)

@dataclass
class LoadedModel:
    """The components the engine drives, on one device in one dtype."""

    model_id: str
    source: str
    tokenizer: Any
    text_encoder: Any
    unet: Any
    vae: Any
    scheduler_config: Any
    device: torch.device
    dtype: torch.dtype

    @property
    def is_inpaint(self) -> bool:
        return self.unet.config.in_channels == 9

    @property
    def vae_scale_factor(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def native_size(self) -> int:
        return self.unet.config.sample_size * self.vae_scale_factor

    @property
    def embed_width(self) -> int:
        return self.text_encoder.config.hidden_size

    @property
    def latent_channels(self) -> int:
        return self.vae.config.latent_channels


def make_scheduler(model: LoadedModel, name: str) -> Any:
    import diffusers

    name = resolve_scheduler_name(name)
    # diffusers' SD pipelines correct two settings of older scheduler configs when they
    # are built (clip_sample off, steps_offset 1); the engine must denoise as they do.
    config = {**model.scheduler_config, "clip_sample": False, "steps_offset": 1}
    if name == "PNDMScheduler":
        # Stable Diffusion uses PNDM's PLMS steps only; the Runge-Kutta warm-up
        # breaks on short schedules and is off in SD's own scheduler configs.
        config["skip_prk_steps"] = True
    return getattr(diffusers, name).from_config(config)


def pick_device(device: str | None, gpu_id: int = 0) -> torch.device:
    if device:
        check_device_name(device)
        chosen = torch.device(device)
        if chosen.type == "cuda":
            if not torch.cuda.is_available():
                raise BadInput(f"--device: '{device}' asked for but CUDA is not available")
            if (chosen.index or 0) >= torch.cuda.device_count():
                raise BadInput(f"--device: '{device}' asked for but this machine has "
                               f"{torch.cuda.device_count()} CUDA device(s)")
        if chosen.type == "mps" and not torch.backends.mps.is_available():
            raise BadInput("--device: 'mps' asked for but Metal is not available")
        return chosen
    if torch.cuda.is_available():
        return torch.device(f"cuda:{gpu_id}")
    return torch.device("cpu")


DTYPES = {"fp16": torch.float16, "float16": torch.float16, "fp32": torch.float32,
          "float32": torch.float32, "bf16": torch.bfloat16, "bfloat16": torch.bfloat16}


def pick_dtype(dtype: str | None, device: torch.device) -> torch.dtype:
    if dtype:
        if dtype not in DTYPES:
            raise BadInput(f"--dtype: unknown dtype {shorten(repr(dtype))} (valid: fp16, bf16, fp32)")
        return DTYPES[dtype]
    return torch.float16 if device.type == "cuda" else torch.float32


def _locate(model_id: str, inpaint: bool) -> str:
    check_model_id(model_id)
    if model_id in TINY_MODELS:
        from .tiny import tiny_path

        return str(tiny_path(inpaint, trained=model_id == "tiny"))
    return model_id


def _load_failure(model_id: str, source: str, exc: Exception) -> str:
    # diffusers' messages can run to paragraphs and point at a stack trace lse does not show.
    text = " ".join(str(exc).split()) or exc.__class__.__name__
    sentences = [s for s in text.split(". ") if "stacktrace" not in s and "stack trace" not in s]
    first = shorten(". ".join(sentences).rstrip(". "), 160)
    if Path(source).is_dir():
        return f"key 'model_id': cannot load the model folder {shorten(model_id)} ({first})"
    return (f"key 'model_id': cannot load {shorten(model_id)} from the Hugging Face hub ({first}); "
            "check the id, the network and `hf auth login`, or give a downloaded diffusers "
            "folder (`--model tiny` needs no download)")


_CACHE: dict[tuple[str, bool, str, torch.dtype], LoadedModel] = {}


def builds_first(model_id: str, inpaint: bool, device: torch.device, dtype: torch.dtype) -> bool:
    """Whether loading will first assemble a built-in model's folder (several seconds, once)."""
    if model_id not in TINY_MODELS or (model_id, inpaint, str(device), dtype) in _CACHE:
        return False
    from .tiny import tiny_built

    return not tiny_built(inpaint, trained=model_id == "tiny")


def load_model(model_id: str, inpaint: bool, device: torch.device, dtype: torch.dtype) -> LoadedModel:
    """Load (or reuse) a model; ``inpaint`` says which kind the experiment needs."""
    key = (model_id, inpaint, str(device), dtype)
    if key in _CACHE:
        return _CACHE[key]
    quiet_libraries()
    source = _locate(model_id, inpaint)
    from diffusers import DiffusionPipeline

    try:
        pipe = DiffusionPipeline.from_pretrained(source, dtype=dtype)
    except (OSError, ValueError) as exc:
        raise BadInput(_load_failure(model_id, source, exc), key="model_id") from None
    missing = [c for c in ("tokenizer", "text_encoder", "unet", "vae") if getattr(pipe, c, None) is None]
    if missing:
        raise BadInput(f"key 'model_id': '{model_id}' is not a Stable Diffusion model "
                       f"(no {', '.join(missing)})", key="model_id")
    model = LoadedModel(
        model_id=model_id,
        source=source,
        tokenizer=pipe.tokenizer,
        text_encoder=pipe.text_encoder.to(device).eval(),
        unet=pipe.unet.to(device).eval(),
        vae=pipe.vae.to(device).eval(),
        scheduler_config=pipe.scheduler.config,
        device=device,
        dtype=dtype,
    )
    if model.is_inpaint != inpaint:
        wanted = "an inpainting model (9-channel UNet)" if inpaint else "a txt2img/img2img model"
        have = "an inpainting model" if model.is_inpaint else "a 4-channel txt2img model"
        raise BadInput(f"key 'model_id': this experiment needs {wanted}, but '{model_id}' is {have}",
                       key="model_id")
    if device.type == "cuda":
        model.unet.to(memory_format=torch.channels_last)
    _CACHE[key] = model
    return model


def apply_memory_options(model: LoadedModel, att_slicing: bool, vae_slicing: bool,
                         vae_tiling: bool, enable_xformers: bool) -> list[str]:
    """Honour the config's memory switches; returns warnings to show the user."""
    notes = []
    model.unet.set_attention_slice("auto" if att_slicing else None)
    (model.vae.enable_slicing if vae_slicing else model.vae.disable_slicing)()
    (model.vae.enable_tiling if vae_tiling else model.vae.disable_tiling)()
    if enable_xformers:
        try:
            model.unet.enable_xformers_memory_efficient_attention()
        except Exception as exc:  # xformers missing or unusable on this device
            notes.append(f"xformers unavailable ({exc.__class__.__name__}); using PyTorch SDPA")
    return notes


def compile_wanted(setting: bool | None, device: torch.device) -> bool:
    """``compile`` in a config: true, false, or unset (compiled on CUDA, where it pays;
    on a CPU inductor's compile takes longer than the run it speeds up)."""
    return device.type == "cuda" if setting is None else setting


def compile_model(model: LoadedModel) -> bool:
    """``torch.compile`` the UNet and the VAE decoder, once per loaded model (the TUI runs
    many experiments). Compiled code is cached under lse's cache folder, so a second
    launch on the same machine reuses it. Returns whether this call compiled anything."""
    if getattr(model.unet, "_lse_compiled", False):
        return False
    from .tiny import cache_root

    # Inductor reads these when it first compiles; a user's own setting wins.
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(cache_root() / "torch-compile"))
    os.environ.setdefault("TORCHINDUCTOR_FX_GRAPH_CACHE", "1")
    os.environ.setdefault("TORCHINDUCTOR_AUTOGRAD_CACHE", "1")
    model.unet.forward = torch.compile(model.unet.forward)
    model.vae.decode = torch.compile(model.vae.decode)
    model.unet._lse_compiled = True
    return True


def quiet_libraries() -> None:
    """Keep the libraries' progress bars and notices off lse's one-line-per-event output."""
    import transformers

    # transformers first: importing diffusers already logs through it.
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    import diffusers

    diffusers.utils.logging.set_verbosity_error()
    diffusers.utils.logging.disable_progress_bar()
    warnings.filterwarnings("ignore", message=".*requires torchvision.*")
