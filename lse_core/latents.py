"""Prompt embeddings, latent noise, interpolation and embedding files."""

from __future__ import annotations

import errno
import pickle
import warnings
import zipfile
from pathlib import Path

import torch

from .config import MAX_SIDE
from .errors import BadInput, shorten
from .files import publish

EMBEDDING_KEYS = ("prompt_embed", "latent_noise", "image_embed")


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


def encode_prompt(model, positive: str, negative: str) -> torch.Tensor:
    """(2, 77, D) float32 on the CPU: row 0 the negative/unconditional, row 1 the positive."""
    return encode_texts(model.tokenizer, model.text_encoder, [negative, positive], model.device)


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


def save_embedding(path: Path, prompt_embed: torch.Tensor, latent_noise: torch.Tensor,
                   image_embed: torch.Tensor) -> None:
    """Write the three tensors to ``.safetensors`` atomically."""
    from safetensors.torch import save_file

    def own(tensor: torch.Tensor) -> torch.Tensor:
        # A packed copy: safetensors refuses views and tensors that share memory.
        return tensor.detach().float().cpu().clone(memory_format=torch.contiguous_format)

    tensors = {"prompt_embed": own(prompt_embed), "latent_noise": own(latent_noise),
               "image_embed": own(image_embed)}
    from safetensors import SafetensorError

    def write(tmp: Path) -> None:
        try:
            save_file(tensors, str(tmp))
        except SafetensorError as exc:
            # safetensors reports I/O failures as its own error; a full disk must stay an
            # OSError so the run stops cleanly and can be resumed.
            if "os error 28" in str(exc):
                raise OSError(errno.ENOSPC, f"no space left on device writing {path}") from None
            raise

    publish(path, write)


def load_embedding(path: str | Path, needs: tuple[str, ...] = EMBEDDING_KEYS,
                   key: str | None = None) -> dict[str, torch.Tensor]:
    """Read a ``.safetensors`` or the original tool's ``.pt`` (tensors only, never pickles).

    ``key`` names the config key that pointed here, for the error message.
    """
    from safetensors import SafetensorError

    path = Path(path)
    if not path.is_file():
        where = f"key '{key}': " if key else ""
        raise BadInput(f"{where}{shorten(str(path))}: embedding file not found")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            data = load_file(str(path))
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
    return {k: v.float() for k, v in data.items() if k in EMBEDDING_KEYS}


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
