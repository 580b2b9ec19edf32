"""Resolving a config's prompts, noises and images into tensors, with clear errors."""

from __future__ import annotations

import hashlib
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import torch
from PIL import Image

from ..config import ExperimentConfig, config_key, is_embedding_path, split_prompt
from ..engine import Conditioning, Engine
from ..errors import BadInput
from ..latents import (
    PromptEmbedding,
    check_latent_noise,
    encode_prompt,
    make_noise,
    prompt_from_file,
    read_embedding,
    require_tensors,
)
from ..models import LoadedModel
from ..preflight import open_image


class Inputs:
    """Loads each input once and reports each loaded file once."""

    def __init__(self, cfg: ExperimentConfig, model: LoadedModel, engine: Engine,
                 notify: Callable[[str], None]) -> None:
        self.cfg = cfg
        self.model = model
        self.engine = engine
        self.notify = notify
        self._prompts: dict[str, PromptEmbedding] = {}
        self._files: dict[str, tuple[dict[str, torch.Tensor], str | None]] = {}

    # files -------------------------------------------------------------------
    def _file(self, path: str, key: str, tensor: str) -> tuple[dict[str, torch.Tensor], str | None]:
        """The file's tensors (``tensor`` among them) and the family it records."""
        if path not in self._files:
            self._files[path] = read_embedding(Path(path).expanduser(), needs=(), key=key)
            self.notify(f"loaded {path}")
        data, family = self._files[path]
        require_tensors(path, data, (tensor,))
        return data, family

    def prompt_file(self, path: str, key: str) -> PromptEmbedding:
        with _blamed_on(key):
            return prompt_from_file(path, *self._file(path, key, "prompt_embed"), self.model)

    def noise_file(self, path: str, key: str) -> torch.Tensor:
        with _blamed_on(key):
            # Noise is standard normal in every family: any file's noise fits a model whose
            # latents have its channels.
            noise = self._file(path, key, "latent_noise")[0]["latent_noise"]
            check_latent_noise(path, noise, self.model.latent_channels)
            return noise

    # prompts -----------------------------------------------------------------
    def prompt(self, item: str, key: str) -> PromptEmbedding:
        """A ``positive|negative`` string or an embedding file path."""
        if is_embedding_path(item):
            return self.prompt_file(item.strip(), key)
        if item not in self._prompts:
            self._prompts[item] = encode_prompt(self.model, *split_prompt(item))
        return self._prompts[item]

    def base_prompt(self) -> PromptEmbedding:
        if self.cfg.load_prompt_embeds:
            return self.prompt_file(self.cfg.load_prompt_embeds, "load_prompt_embeds")
        return self.prompt(self.cfg.prompt or "", "prompt")

    # noise -------------------------------------------------------------------
    def size(self) -> tuple[int, int]:
        """(height, width) from the config, else the model's native size."""
        native = self.model.native_size
        return self.cfg.height or native, self.cfg.width or native

    def pixel_size(self, noise: torch.Tensor) -> tuple[int, int]:
        """The image size a noise tensor renders at (a loaded noise fixes the size)."""
        scale = self.model.vae_scale_factor
        return noise.shape[-2] * scale, noise.shape[-1] * scale

    def noise_for_seed(self, seed: int, count: int = 1,
                       size: tuple[int, int] | None = None) -> torch.Tensor:
        height, width = size or self.size()
        return make_noise(seed, count, height, width, self.model.latent_channels,
                          self.model.vae_scale_factor)

    def base_noise(self) -> torch.Tensor:
        """(N, C, h, w) for ``images_per_prompt`` images, or the loaded noise."""
        if self.cfg.load_latent_noise:
            return self.noise_file(self.cfg.load_latent_noise, "load_latent_noise")
        return self.noise_for_seed(self.cfg.rand_seed, self.cfg.images_per_prompt)

    def noise_item(self, item: int | str, key: str) -> torch.Tensor:
        """An interpolation/outpaint noise item: a seed or an embedding file path."""
        if isinstance(item, int):
            return self.noise_for_seed(item)
        # preflight() refused any other string
        return self.noise_file(item.strip(), key)

    # images ------------------------------------------------------------------
    def image(self, key: str) -> Image.Image:
        path = getattr(self.cfg, key)
        image = open_image(path, key)
        self.notify(f"loaded {path}")
        return image

    def conditioning(self, size: tuple[int, int]) -> Conditioning | None:
        """The config's image (and mask) at ``size`` for every frame, or None for txt2img."""
        cfg = self.cfg
        if cfg.model_identifier == "txt2img":
            return None
        height, width = size
        image = self.image("image")
        mask = None
        if cfg.model_identifier == "inpaint":
            mask = self.image("mask")
            if mask.size != image.size:
                self.notify(f"mask {cfg.mask} is {mask.size[0]}x{mask.size[1]} but the image is "
                            f"{image.size[0]}x{image.size[1]}; resizing the mask")
                mask = mask.resize(image.size, Image.Resampling.NEAREST)
        key = content_key(image, mask)
        return self.engine.prepare_conditioning(key, image, height, width, mask)


def content_key(image: Image.Image, mask: Image.Image | None = None) -> str:
    """Identifies image inputs by content, so the engine's encoding cache never goes stale."""
    digest = hashlib.sha1(image.tobytes())
    if mask is not None:
        digest.update(mask.tobytes())
    return digest.hexdigest()


@contextmanager
def _blamed_on(key: str) -> Iterator[None]:
    """An embedding file's checks know its path, not the config key naming it: the
    error is shown at that key."""
    try:
        yield
    except BadInput as exc:
        raise BadInput(str(exc), key=exc.key or config_key(key)) from None
