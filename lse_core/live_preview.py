"""Live step previews: a frame's current latents as a small picture, without the VAE.

A VAE decode per step would cost about as much as the step itself. Each latent
pixel's colour is close to a linear function of its channels, so a 3×C matrix
and a bias map latents to RGB at the latents' own resolution (the front end
scales the picture up). The map is fitted once per VAE by least squares from a
few real decodes and cached under lse's cache folder, keyed by a digest of the
VAE (a user's model folder may be read-only). No library offers such a fit for
an arbitrary VAE, so it is written here; it is a dozen lines of ``torch.linalg``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .files import publish
from .models import LoadedModel

# The fit decodes clean images' latents (smooth random colour fields, encoded) and as many
# random latents twice as spread (a denoising journey's latents range wider than a
# clean image's): SAMPLES × 2 × (SIDE/8)² latent pixels for 3 × (C + 1) numbers.
SAMPLES, SIDE, SEED, SPREAD = 6, 64, 0, 2.0
CACHE_VERSION = 2


@dataclass(frozen=True)
class LatentPreview:
    """Latents (B, C, h, w) in the engine's scheduler space → RGB in [0, 1]."""

    weights: torch.Tensor  # (3, C)
    bias: torch.Tensor  # (3,)

    def images(self, latents: torch.Tensor) -> list[Image.Image]:
        """One h×w picture per frame of the batch (cheap: a few hundred flops per pixel)."""
        rgb = torch.einsum("bchw,rc->brhw", latents.detach().float().cpu(), self.weights)
        rgb = rgb + self.bias.view(1, 3, 1, 1)
        pixels = (rgb.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
        return [Image.fromarray(np.ascontiguousarray(p)) for p in pixels]

    def as_json(self) -> dict:
        return {"version": CACHE_VERSION, "weights": self.weights.tolist(),
                "bias": self.bias.tolist()}

    @classmethod
    def from_json(cls, data: dict, channels: int) -> "LatentPreview":
        """A cached map, checked (``ValueError`` when it is not one lse wrote)."""
        if not isinstance(data, dict) or data.get("version") != CACHE_VERSION:
            raise ValueError("not a live preview map of this lse")
        weights = torch.tensor(data["weights"], dtype=torch.float32)
        bias = torch.tensor(data["bias"], dtype=torch.float32)
        if weights.shape != (3, channels) or bias.shape != (3,) or not torch.isfinite(weights).all():
            raise ValueError("a live preview map of another shape")
        return cls(weights, bias)


def vae_digest(model: LoadedModel) -> str:
    """Identifies the VAE decoder: its config and the weights at both ends of the decoder
    (hashing all of an SDXL VAE's weights would take seconds at every load)."""
    vae = model.vae
    digest = hashlib.sha256(json.dumps(dict(vae.config), sort_keys=True, default=str).encode())
    for name, tensor in sorted(vae.state_dict().items()):
        if name.startswith(("post_quant_conv.", "decoder.conv_in.", "decoder.conv_out.")):
            digest.update(name.encode())
            digest.update(tensor.detach().float().cpu().numpy().tobytes())
    return digest.hexdigest()[:32]


def colour_fields(count: int, side: int, seed: int) -> torch.Tensor:
    """(count, 3, side, side) in [-1, 1]: random colours at 4×4, smoothly upsampled."""
    generator = torch.Generator("cpu").manual_seed(seed)
    coarse = torch.rand((count, 3, 4, 4), generator=generator) * 2 - 1
    return F.interpolate(coarse, size=(side, side), mode="bicubic", align_corners=False).clamp(-1, 1)


@torch.no_grad()
def fit(model: LoadedModel) -> LatentPreview:
    """Least squares from latents to the colours the VAE decodes them to."""
    vae = model.vae
    scaling = vae.config.scaling_factor
    pixels = colour_fields(SAMPLES, SIDE, SEED).to(model.device, vae.dtype)
    clean = vae.encode(pixels).latent_dist.mean * scaling
    generator = torch.Generator("cpu").manual_seed(SEED)
    spread = SPREAD * torch.randn(clean.shape, generator=generator)
    latents = torch.cat([clean, spread.to(clean.device, clean.dtype)])
    decoded = vae.decode(latents / scaling, return_dict=False)[0].float()
    factor = decoded.shape[-1] // latents.shape[-1]
    colours = (F.avg_pool2d(decoded, factor).clamp(-1, 1) + 1) / 2  # (N, 3, h, w) in [0, 1]
    channels = latents.shape[1]
    x = latents.float().permute(0, 2, 3, 1).reshape(-1, channels).cpu()
    y = colours.permute(0, 2, 3, 1).reshape(-1, 3).cpu()
    x1 = torch.cat([x, torch.ones(len(x), 1)], dim=1)
    solution = torch.linalg.lstsq(x1.double(), y.double()).solution.float()  # (C + 1, 3)
    return LatentPreview(solution[:-1].T.contiguous(), solution[-1].contiguous())


_FITTED: dict[int, LatentPreview] = {}


def preview_for(model: LoadedModel, cache: Path) -> LatentPreview:
    """The model's map: from memory, from ``cache``, or fitted now and cached there."""
    if id(model) in _FITTED:
        return _FITTED[id(model)]
    path = cache / "live-preview" / f"{vae_digest(model)}.json"
    try:
        preview = LatentPreview.from_json(json.loads(path.read_text()), model.latent_channels)
    except (OSError, ValueError, KeyError, TypeError):
        preview = fit(model)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            publish(path, lambda tmp: tmp.write_text(json.dumps(preview.as_json())))
        except OSError:
            pass  # an unwritable cache only means fitting again next time
    _FITTED[id(model)] = preview
    return preview
