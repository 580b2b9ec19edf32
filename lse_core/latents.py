"""Prompt embeddings, latent noise, interpolation and embedding files."""

from __future__ import annotations

import errno
import pickle
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch

from .config import MAX_SIDE
from .errors import BadInput, shorten, shown_path
from .families import family_of_file

POOLED = "pooled_prompt_embed"
FRAME_KEYS = ("prompt_embed", "latent_noise", "image_embed")  # in every frame's file
EMBEDDING_KEYS = (*FRAME_KEYS, POOLED)
FAMILY_METADATA = "family"  # the safetensors metadata entry naming the family


@dataclass(frozen=True)
class PromptEmbedding:
    """A prompt as the UNet reads it; row 0 of each tensor is the negative prompt, row 1 the
    positive one. Every move through prompt space moves ``tokens`` and ``pooled`` alike."""

    tokens: torch.Tensor  # (2, 77, D)
    pooled: torch.Tensor | None  # (2, P): SDXL's pooled text embedding, else None
    family: str  # the key of the model family it was made for (``families.FAMILIES``)

    def _map(self, other: PromptEmbedding | None, op) -> PromptEmbedding:
        pooled = None
        if self.pooled is not None:
            pooled = op(self.pooled, other.pooled if other is not None else None)
        return PromptEmbedding(op(self.tokens, other.tokens if other is not None else None),
                               pooled, self.family)

    def interpolate(self, other: PromptEmbedding, t: float, method: str) -> PromptEmbedding:
        """slerp or lerp, each tensor on its own, per sample and in float32."""
        return self._map(other, lambda a, b: interpolate(a, b, t, method))

    def plus(self, delta: PromptEmbedding, times: float = 1) -> PromptEmbedding:
        return self._map(delta, lambda a, d: a + times * d)

    def random_delta(self, generator: torch.Generator, step_size: float) -> PromptEmbedding:
        """Uniform in [-1, 1] × step_size, shaped like each tensor. The token delta is drawn
        first and nothing else is drawn without a pooled embedding, so SD 1.x/2.x walks draw
        exactly the numbers they always did."""
        return self._map(None, lambda a, _: step_size * (torch.rand(a.shape, generator=generator) * 2 - 1))


@torch.no_grad()
def encode_texts(tokenizer, text_encoder, texts: list[str],
                 device: torch.device | str = "cpu") -> torch.Tensor:
    """(len(texts), 77, D) float32 on the CPU, each text padded to the tokenizer's full length
    (the one way text is encoded: for rendering and for training the tiny model)."""
    tokens = tokenizer(
        texts,
        padding="max_length",
        max_length=tokenizer.model_max_length,
        truncation=True,
        return_tensors="pt",
    )
    hidden = text_encoder(tokens.input_ids.to(device))[0]
    return hidden.float().cpu()


def encode_prompt(model, positive: str, negative: str) -> PromptEmbedding:
    """Float32 on the CPU: row 0 the negative/unconditional, row 1 the positive."""
    if model.family.pooled:
        return _encode_pooled(model, positive, negative)
    tokens = encode_texts(model.tokenizer, model.text_encoder, [negative, positive], model.device)
    return PromptEmbedding(tokens, None, model.family.key)


@torch.no_grad()
def _encode_one(model, text: str) -> tuple[torch.Tensor, torch.Tensor]:
    """One text as diffusers' SDXL pipelines encode it: every encoder's penultimate hidden
    states side by side, and the pooled embedding of the encoder with a projection."""
    hidden, pooled = [], None
    for tokenizer, encoder in model.text_encoders:
        ids = tokenizer([text], padding="max_length", max_length=tokenizer.model_max_length,
                        truncation=True, return_tensors="pt").input_ids
        out = encoder(ids.to(model.device), output_hidden_states=True)
        if pooled is None and out[0].ndim == 2:  # text_embeds: the projected pooled output
            pooled = out[0]
        hidden.append(out.hidden_states[-2])
    return torch.cat(hidden, dim=-1)[0].float().cpu(), pooled[0].float().cpu()


def _encode_pooled(model, positive: str, negative: str) -> PromptEmbedding:
    tokens, pooled = _encode_one(model, positive)
    if not negative and model.force_zeros_for_empty_prompt:
        # The SDXL pipelines' default: no negative prompt means zeros, not the empty text.
        neg_tokens, neg_pooled = torch.zeros_like(tokens), torch.zeros_like(pooled)
    else:
        neg_tokens, neg_pooled = _encode_one(model, negative)
    return PromptEmbedding(torch.stack([neg_tokens, tokens]), torch.stack([neg_pooled, pooled]),
                           model.family.key)


def make_noise(seed: int, count: int, height: int, width: int, channels: int = 4,
               scale: int = 8) -> torch.Tensor:
    """(count, C, H/8, W/8) standard normal noise, the same on every device."""
    generator = torch.Generator("cpu").manual_seed(seed)
    return torch.randn((count, channels, height // scale, width // scale), generator=generator)


def lerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    return (1 - t) * a.float() + t * b.float()


def slerp(a: torch.Tensor, b: torch.Tensor, t: float, dot_threshold: float = 0.9995) -> torch.Tensor:
    """Spherical interpolation of one sample in float32 (fp16 norms overflow).

    Falls back to lerp for nearly parallel inputs, where the angle is unstable.
    """
    a32, b32 = a.float(), b.float()
    dot = torch.sum(a32 * b32) / (a32.norm() * b32.norm())
    if torch.abs(dot) > dot_threshold:
        return lerp(a32, b32, t)
    theta = torch.acos(dot.clamp(-1, 1))
    sin_theta = torch.sin(theta)
    return (torch.sin((1 - t) * theta) / sin_theta) * a32 + (torch.sin(t * theta) / sin_theta) * b32


def interpolate(a: torch.Tensor, b: torch.Tensor, t: float, method: str) -> torch.Tensor:
    return slerp(a, b, t) if method == "slerp" else lerp(a, b, t)


def write_embedding(tmp: Path, prompt_embed: PromptEmbedding, latent_noise: torch.Tensor,
                    image_embed: torch.Tensor, shown: Path) -> None:
    """The tensors (SDXL: with the pooled embedding) and the family written to ``tmp`` as
    ``.safetensors`` (``shown``: the name it is written for, in a full disk's message)."""
    import numpy as np
    from safetensors import SafetensorError
    from safetensors.numpy import save_file

    def own(tensor: torch.Tensor) -> np.ndarray:
        # Packed numpy arrays, not torch copies: this runs on the writer's thread, where
        # a torch copy starts intra-op threads that compete with the rendering ones.
        return np.ascontiguousarray(tensor.detach().float().cpu().numpy())

    tensors = {"prompt_embed": own(prompt_embed.tokens), "latent_noise": own(latent_noise),
               "image_embed": own(image_embed)}
    if prompt_embed.pooled is not None:
        tensors[POOLED] = own(prompt_embed.pooled)
    try:
        save_file(tensors, str(tmp), metadata={FAMILY_METADATA: prompt_embed.family})
    except SafetensorError as exc:
        # safetensors reports I/O failures as its own error; a full disk must stay an
        # OSError so the run stops cleanly and can be resumed.
        if "os error 28" in str(exc):
            raise OSError(errno.ENOSPC, f"no space left on device writing {shown}") from None
        raise


def load_embedding(path: str | Path, needs: tuple[str, ...] = FRAME_KEYS,
                   key: str | None = None) -> dict[str, torch.Tensor]:
    """Read a ``.safetensors`` or the original tool's ``.pt`` (tensors only, never pickles).

    ``key`` names the config key that pointed here, for the error message.
    """
    return read_embedding(path, needs, key)[0]


def read_embedding(path: str | Path, needs: tuple[str, ...] = FRAME_KEYS,
                   key: str | None = None) -> tuple[dict[str, torch.Tensor], str | None]:
    """``load_embedding``'s tensors and the family the file records (None: not recorded,
    as in the original tool's files)."""
    from safetensors import SafetensorError

    path = Path(path)
    if not path.is_file():
        where = f"key '{key}': " if key else ""
        raise BadInput(f"{where}{shorten(str(path))}: embedding file not found")
    try:
        family = None
        if path.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as handle:
                data = {name: handle.get_tensor(name) for name in handle.keys()}
                family = (handle.metadata() or {}).get(FAMILY_METADATA)
        else:
            with warnings.catch_warnings():
                # torch.load warns about the file's pickle protocol and format; what
                # matters is whether it holds tensors, which is checked below, and a
                # warning line must not come before lse's one-line answer.
                warnings.simplefilter("ignore")
                data = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, zipfile.BadZipFile, EOFError, OSError,
            ValueError, SafetensorError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        if "weights only" in reason.lower() or "unsupported global" in reason.lower():
            reason = "it holds objects other than tensors"
        raise BadInput(f"{shorten(str(path))}: not a readable embedding file "
                       f"({shorten(reason, 160)})") from None
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise BadInput(f"{shorten(str(path))}: an embedding file must hold a mapping of tensors")
    require_tensors(path, data, needs)
    return {k: v.float() for k, v in data.items() if k in EMBEDDING_KEYS}, family


def require_tensors(path: str | Path, data: dict[str, torch.Tensor], needs: tuple[str, ...]) -> None:
    missing = [k for k in needs if k not in data]
    if missing:
        raise BadInput(f"{shorten(str(path))}: missing tensor {', '.join(missing)} "
                       f"(has {', '.join(sorted(data)) or 'nothing'})")


def check_prompt_embed(path: str | Path, embed: torch.Tensor, width: int, tokens: int = 77) -> None:
    expected = (2, tokens, width)
    if tuple(embed.shape) != expected:
        raise BadInput(f"{shorten(str(path))}: tensor prompt_embed has shape "
                       f"{tuple(embed.shape)}, the model needs {expected}")
    check_values(path, "prompt_embed", embed)


def prompt_from_file(path: str | Path, data: dict[str, torch.Tensor], recorded: str | None,
                     model) -> PromptEmbedding:
    """The prompt embedding a file holds, checked against the model's family and shapes."""
    shown = shown_path(path)
    tokens = data["prompt_embed"]
    family = family_of_file(recorded, tokens.shape[-1])
    if recorded is not None and family is None:
        raise BadInput(f"{shown}: the file records an unknown model family "
                       f"{shorten(repr(recorded), 30)}")
    if family is not None and family is not model.family:
        raise BadInput(f"{shown}: an {family.label} embedding file, but the model is "
                       f"{model.family.label} (tensor prompt_embed has shape "
                       f"{tuple(tokens.shape)}, the model needs "
                       f"{(2, model.tokens, model.embed_width)})")
    check_prompt_embed(path, tokens, model.embed_width, model.tokens)
    pooled = None
    if model.family.pooled:
        require_tensors(path, data, (POOLED,))
        pooled = data[POOLED]
        if tuple(pooled.shape) != (2, model.pooled_width):
            raise BadInput(f"{shown}: tensor {POOLED} has shape {tuple(pooled.shape)}, the "
                           f"model needs {(2, model.pooled_width)}")
        check_values(path, POOLED, pooled)
    return PromptEmbedding(tokens, pooled, model.family.key)


def check_latent_noise(path: str | Path, noise: torch.Tensor, channels: int,
                       max_side: int = MAX_SIDE // 8) -> None:
    shape = tuple(noise.shape)
    if (noise.ndim != 4 or shape[0] != 1 or shape[1] != channels
            or not 1 <= min(shape[2:]) <= max(shape[2:]) <= max_side):
        raise BadInput(f"{shorten(str(path))}: tensor latent_noise has shape {shape}, the model "
                       f"needs (1, {channels}, H/8, W/8) with sides from 1 to {max_side}")
    check_values(path, "latent_noise", noise)


def check_values(path: str | Path, name: str, tensor: torch.Tensor) -> None:
    """NaN or infinite values render garbage without any error: refuse them."""
    if not torch.isfinite(tensor).all():
        raise BadInput(f"{shorten(str(path))}: tensor {name} holds NaN or infinite values")
