"""Loading Stable Diffusion components once per process (where they come from: sources.py),
for the families in ``families`` (SD 1.x, SD 2.x, SDXL)."""

from __future__ import annotations

import logging
import os
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import torch

from .config import resolve_scheduler_name
from .errors import BadInput, shorten
from .families import SDXL, Anatomy, Family, detect_family
from .preflight import check_device_name
from .sources import TINY_MODELS, load_pipeline, locate

log = logging.getLogger(__name__)
CACHE_VARIABLE = "TORCHINDUCTOR_CACHE_DIR"

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
    family: Family
    # SDXL: the second tokenizer and text encoder (the pooled embedding comes from it), and
    # the pipeline settings that decide its negative prompt and its size conditioning.
    tokenizer_2: Any = None
    text_encoder_2: Any = None
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def text_encoders(self) -> list[tuple[Any, Any]]:
        """(tokenizer, text encoder) pairs whose outputs make the prompt embedding, in order
        (an SDXL refiner has only the second)."""
        pairs = [(self.tokenizer, self.text_encoder), (self.tokenizer_2, self.text_encoder_2)]
        return [(tok, enc) for tok, enc in pairs if enc is not None]

    @property
    def force_zeros_for_empty_prompt(self) -> bool:
        # The SDXL pipelines' default when the model's config does not say.
        return bool(self.settings.get("force_zeros_for_empty_prompt", True))

    @property
    def requires_aesthetics_score(self) -> bool:
        return bool(self.settings.get("requires_aesthetics_score", False))

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
        return sum(encoder.config.hidden_size for _, encoder in self.text_encoders)

    @property
    def pooled_width(self) -> int | None:
        """Width of the pooled text embedding (SDXL: text_encoder_2's projection), else None."""
        return self.text_encoder_2.config.projection_dim if self.family.pooled else None

    @property
    def tokens(self) -> int:
        return self.text_encoders[0][0].model_max_length

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


_CACHE: dict[tuple[str, bool, str, torch.dtype], LoadedModel] = {}


def builds_first(model_id: str, inpaint: bool, device: torch.device, dtype: torch.dtype) -> bool:
    """Whether loading will first assemble a built-in model's folder (several seconds, once)."""
    if model_id not in TINY_MODELS or (model_id, inpaint, str(device), dtype) in _CACHE:
        return False
    from .tiny import tiny_built

    return not tiny_built(inpaint, trained=model_id == "tiny")


def load_model(model_id: str, inpaint: bool, device: torch.device, dtype: torch.dtype,
               notify: Callable[[str], None] = lambda line: None) -> LoadedModel:
    """Load (or reuse) a model; ``inpaint`` says which kind the experiment needs;
    ``notify`` hears what the user should know (a mirror used, a download started)."""
    key = (model_id, inpaint, str(device), dtype)
    if key in _CACHE:
        return _CACHE[key]
    quiet_libraries()
    source = locate(model_id)
    if source.note:
        notify(source.note)
    pipe = load_pipeline(source, dtype, inpaint, notify)
    model = assemble(pipe, model_id, source.location, device, dtype)
    if model.is_inpaint != inpaint:
        wanted = "an inpainting model (9-channel UNet)" if inpaint else "a txt2img/img2img model"
        have = "an inpainting model" if model.is_inpaint else "a 4-channel txt2img model"
        raise BadInput(f"key 'model_id': this experiment needs {wanted}, but '{model_id}' is {have}",
                       key="model_id")
    if device.type == "cuda":
        model.unet.to(memory_format=torch.channels_last)
    _CACHE[key] = model
    return model


def assemble(pipe: Any, model_id: str, source: str, device: torch.device,
             dtype: torch.dtype) -> LoadedModel:
    """The engine's view of a loaded pipeline, once its family is known."""
    family = detect_family(Anatomy.of_pipeline(pipe), model_id)
    needed = ("tokenizer_2", "text_encoder_2") if family is SDXL else ("tokenizer", "text_encoder")
    missing = [c for c in (*needed, "unet", "vae") if getattr(pipe, c, None) is None]
    if missing:
        raise BadInput(f"key 'model_id': '{model_id}' is not a {family.label} model "
                       f"(no {', '.join(missing)})", key="model_id")

    def on_device(part: Any) -> Any:
        return part.to(device).eval() if part is not None else None

    vae = on_device(pipe.vae)
    if family is SDXL and dtype == torch.float16 and vae.config.force_upcast:
        # SDXL's VAE overflows in fp16; its pipelines run it in float32 (``force_upcast``).
        vae.to(torch.float32)
    return LoadedModel(
        model_id=model_id,
        source=source,
        tokenizer=getattr(pipe, "tokenizer", None),
        text_encoder=on_device(getattr(pipe, "text_encoder", None)),
        unet=on_device(pipe.unet),
        vae=vae,
        scheduler_config=pipe.scheduler.config,
        device=device,
        dtype=dtype,
        family=family,
        tokenizer_2=getattr(pipe, "tokenizer_2", None),
        text_encoder_2=on_device(getattr(pipe, "text_encoder_2", None)),
        settings={k: v for k, v in pipe.config.items()
                  if k in ("force_zeros_for_empty_prompt", "requires_aesthetics_score")},
    )


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
    many experiments). Compiling happens at the first calls, so run them inside
    ``compile_cache``. Returns whether this call compiled anything."""
    if getattr(model.unet, "_lse_compiled", False):
        return False
    model.unet.forward = torch.compile(model.unet.forward)
    model.vae.decode = torch.compile(model.vae.decode)
    model.unet._lse_compiled = True
    return True


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """torch's intra-op thread count set to ``count`` while the block runs, then put back
    (the count is process-wide: a later run in the same process starts from its own)."""
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextmanager
def compile_cache() -> Iterator[None]:
    """Inductor's compiled code cached under lse's cache folder (a second launch on the
    same machine reuses it) while the block runs; the environment is restored afterwards,
    because the process may run other experiments or be a library user's own. A user's
    own ``TORCHINDUCTOR_CACHE_DIR`` wins. (Inductor reads the variable at every compile,
    and its local FX-graph and autograd caches are on by default.)"""
    from .tiny import cache_root

    before = os.environ.get(CACHE_VARIABLE)
    os.environ[CACHE_VARIABLE] = before or str(cache_root() / "torch-compile")
    try:
        yield
    finally:
        # Inductor writes the variable itself when it compiles: put back what was there.
        if before is None:
            os.environ.pop(CACHE_VARIABLE, None)
        else:
            os.environ[CACHE_VARIABLE] = before


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
