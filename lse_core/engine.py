"""The one denoising engine: txt2img, img2img and inpaint, batched, with explicit noise.

diffusers' pipelines draw their own noise, encode prompts themselves and cannot
run a batch of frames that each have their own prompt embedding, noise and
image; latent-space experiments need all three, so the loop is written here on
top of the pipeline's components and schedulers.
"""

from __future__ import annotations

import inspect
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F
from PIL import Image

from .config import img2img_steps
from .errors import Cancelled, RenderFault
from .latents import PromptEmbedding
from .models import LoadedModel, make_scheduler

# diffusers' SDXL img2img/inpaint pipelines' default aesthetic scores, which a UNet that
# requires them (``requires_aesthetics_score``, e.g. the SDXL refiner) reads in place of
# the target size.
AESTHETIC_SCORE, NEGATIVE_AESTHETIC_SCORE = 6.0, 2.5


@dataclass
class Conditioning:
    """A frame's image inputs: ``image`` (1,3,H,W) in [-1,1]; ``mask`` (1,1,H,W), 1 = repaint.

    ``key`` identifies the content so that equal inputs are VAE-encoded once.
    """

    key: str
    image: torch.Tensor
    mask: torch.Tensor | None = None


@dataclass
class FrameInput:
    """Everything that decides one frame's pixels."""

    prompt_embed: PromptEmbedding  # negative row, positive row
    noise: torch.Tensor  # (1, 4, H/8, W/8), before scheduler scaling
    step_seed: int = 0  # seeds the per-step noise of ancestral/SDE schedulers
    conditioning: Conditioning | None = None
    # Latent blending: the frame starts from these latents (scheduler space, (1, 4, h, w))
    # at ``RenderSettings.start_step`` instead of from ``noise``.
    start_latents: torch.Tensor | None = None


@dataclass
class RenderSettings:
    steps: int
    guidance_scale: float
    scheduler: str
    strength: float = 1.0  # img2img only
    capture_steps: bool = False
    # Latent blending: run only the steps from ``start_step`` on, from each frame's
    # ``start_latents``; and keep each frame's latents once ``keep_step`` steps are done.
    start_step: int = 0
    keep_step: int | None = None


@dataclass
class RenderedFrame:
    image_embed: torch.Tensor  # (1, 4, h, w) final latents / VAE scaling factor, float32 CPU
    image: Image.Image
    steps: list[tuple[torch.Tensor, Image.Image]] = field(default_factory=list)
    kept_latents: torch.Tensor | None = None  # (1, 4, h, w) at ``keep_step``, float32 CPU


StepCallback = Callable[[int, int], None]
# (steps done, steps in all, the batch's current latents): the live preview's hook.
LatentsCallback = Callable[[int, int, torch.Tensor], None]


def _completes_step(scheduler) -> bool:
    """Whether the last ``scheduler.step`` call finished a denoising step.

    Second-order schedulers (Heun, KDPM2) make two calls per step (one for the
    last) and PNDM makes one warm-up call; only finished steps are reported and captured.
    """
    if hasattr(scheduler, "state_in_first_order"):
        return scheduler.state_in_first_order
    if hasattr(scheduler, "ets") and hasattr(scheduler, "counter"):  # PNDM's PLMS warm-up
        return scheduler.counter != 1
    return True


def size_conditioning(model: LoadedModel, height: int, width: int) -> tuple[list[float], list[float]]:
    """SDXL's (negative, positive) ``time_ids`` as its pipelines compute them by default:
    original size = target size = the image's (height, width), crop top-left (0, 0)."""
    if model.requires_aesthetics_score:
        return ([height, width, 0, 0, NEGATIVE_AESTHETIC_SCORE],
                [height, width, 0, 0, AESTHETIC_SCORE])
    ids = [height, width, 0, 0, height, width]
    return ids, ids


def first_step(settings: RenderSettings, img2img: bool) -> int:
    """The index of the first denoising step a frame runs."""
    if settings.start_step:
        return settings.start_step
    return settings.steps - img2img_steps(settings.steps, settings.strength) if img2img else 0


def steps_run(settings: RenderSettings, img2img: bool) -> int:
    """Denoising steps actually run for one frame."""
    return settings.steps - first_step(settings, img2img)


class Engine:
    """Renders batches of independent frames through one UNet call per step."""

    def __init__(self, model: LoadedModel, cache_size: int = 16) -> None:
        from diffusers.image_processor import VaeImageProcessor

        self.model = model
        self.image_processor = VaeImageProcessor(vae_scale_factor=model.vae_scale_factor)
        self._encoded: OrderedDict[tuple[str, str], torch.Tensor] = OrderedDict()
        self._cache_size = cache_size

    @property
    def scaling_factor(self) -> float:
        return self.model.vae.config.scaling_factor

    def render(
        self,
        frames: list[FrameInput],
        settings: RenderSettings,
        on_step: StepCallback | None = None,
        cancel: threading.Event | None = None,
        pad_to: int | None = None,
        on_latents: LatentsCallback | None = None,
    ) -> list[RenderedFrame]:
        """Render ``frames`` together. ``pad_to`` fills the batch up to that size with
        copies of the last frame, dropped from the result: a compiled model then sees
        one shape all journey long (no recompiling). The real frames' bytes are not
        promised equal to an unpadded batch's (rounding differs with the batch's shape;
        the README's "Same inputs, same bytes"), so a session stores whether it padded.
        ``on_latents`` hears every finished step's latents of the real frames (the
        live preview); without it the loop does nothing more than before."""
        real = len(frames)
        if pad_to is not None and pad_to > real:
            frames = frames + [frames[-1]] * (pad_to - real)
        hook = None
        if on_latents is not None:
            hook = lambda done, total, latents: on_latents(done, total, latents[:real])  # noqa: E731
        return self._render(frames, settings, on_step, cancel, hook)[:real]

    @torch.no_grad()
    def _render(self, frames: list[FrameInput], settings: RenderSettings,
                on_step: StepCallback | None, cancel: threading.Event | None,
                on_latents: LatentsCallback | None = None) -> list[RenderedFrame]:
        model = self.model
        device, dtype = model.device, model.dtype
        scheduler = make_scheduler(model, settings.scheduler)
        scheduler.set_timesteps(settings.steps, device=device)
        timesteps = scheduler.timesteps
        img2img = not model.is_inpaint and frames[0].conditioning is not None

        noise = torch.cat([f.noise for f in frames]).to(device, torch.float32)
        start = first_step(settings, img2img) * scheduler.order
        if start:
            timesteps = timesteps[start:]
            if hasattr(scheduler, "set_begin_index"):
                scheduler.set_begin_index(start)
        if settings.start_step:
            latents = torch.cat([f.start_latents for f in frames]).to(device, torch.float32)
        elif img2img:
            image_latents = torch.cat([self._image_latents(f.conditioning) for f in frames])
            latents = scheduler.add_noise(image_latents, noise, timesteps[:1].repeat(len(frames)))
        else:
            latents = noise * scheduler.init_noise_sigma
        inpaint_extra = None
        if model.is_inpaint:
            inpaint_extra = torch.cat([self._inpaint_inputs(f.conditioning, noise.shape[-2:])
                                       for f in frames])

        # The original tool applies uncond + g·(cond − uncond) for every g, so g < 1 is
        # meaningful (g = 0 is the negative prompt alone); only g = 1, where the formula
        # is the conditional prediction, can skip the unconditional half.
        guided = settings.guidance_scale != 1
        embeds = torch.stack([f.prompt_embed.tokens for f in frames]).to(device, dtype)  # (B, 2, 77, D)
        hidden = torch.cat([embeds[:, 0], embeds[:, 1]]) if guided else embeds[:, 1]
        added = self._added_conditions(frames, noise.shape[-2:], guided)
        generators = [torch.Generator("cpu").manual_seed(f.step_seed) for f in frames]
        step_kwargs = {}
        if "generator" in inspect.signature(scheduler.step).parameters:
            step_kwargs["generator"] = generators

        captured: list[list[tuple[torch.Tensor, Image.Image]]] = [[] for _ in frames]
        kept: torch.Tensor | None = None
        total, done = steps_run(settings, img2img), 0
        done_before = settings.steps - total
        last = len(timesteps) - 1
        for index, t in enumerate(timesteps):
            if cancel is not None and cancel.is_set():
                raise Cancelled()
            unet_in = torch.cat([latents] * 2) if guided else latents
            unet_in = scheduler.scale_model_input(unet_in, t)
            if inpaint_extra is not None:
                extra = torch.cat([inpaint_extra] * 2) if guided else inpaint_extra
                unet_in = torch.cat([unet_in, extra], dim=1)
            pred = model.unet(unet_in.to(dtype), t, encoder_hidden_states=hidden,
                              added_cond_kwargs=added, return_dict=False)[0].float()
            if guided:
                uncond, cond = pred.chunk(2)
                pred = uncond + settings.guidance_scale * (cond - uncond)
            latents = scheduler.step(pred, t, latents, return_dict=False, **step_kwargs)[0]
            if index < last and not _completes_step(scheduler):
                continue
            done += 1
            if settings.keep_step == done_before + done:
                kept = latents.float().cpu().clone()
            if settings.capture_steps:
                embeds_now, images_now = self._decode(latents)
                for slot, pair in zip(captured, zip(embeds_now, images_now)):
                    slot.append(pair)
            if on_latents is not None:
                on_latents(done, total, latents)
            if on_step is not None:
                on_step(done, total)

        if settings.capture_steps and captured[0]:
            rendered = [RenderedFrame(image_embed=c[-1][0], image=c[-1][1], steps=c) for c in captured]
        else:
            image_embeds, images = self._decode(latents)
            rendered = [RenderedFrame(image_embed=e, image=i) for e, i in zip(image_embeds, images)]
        if kept is not None:
            for frame, latents_kept in zip(rendered, kept):
                frame.kept_latents = latents_kept.unsqueeze(0)
        return rendered

    def _added_conditions(self, frames: list[FrameInput], latent_size: torch.Size,
                          guided: bool) -> dict[str, torch.Tensor] | None:
        """SDXL's extra UNet inputs, in the batch's order (negatives first when guided): the
        pooled text embedding and the size/crop conditioning."""
        if not self.model.family.pooled:
            return None
        device, dtype = self.model.device, self.model.dtype
        pooled = torch.stack([f.prompt_embed.pooled for f in frames]).to(device, dtype)  # (B, 2, P)
        scale = self.model.vae_scale_factor
        negative, positive = size_conditioning(self.model, latent_size[0] * scale,
                                               latent_size[1] * scale)
        ids = torch.tensor([positive], dtype=dtype, device=device).repeat(len(frames), 1)
        if not guided:
            return {"text_embeds": pooled[:, 1], "time_ids": ids}
        negative_ids = torch.tensor([negative], dtype=dtype, device=device).repeat(len(frames), 1)
        return {"text_embeds": torch.cat([pooled[:, 0], pooled[:, 1]]),
                "time_ids": torch.cat([negative_ids, ids])}

    def _decode(self, latents: torch.Tensor) -> tuple[list[torch.Tensor], list[Image.Image]]:
        image_embed = latents / self.scaling_factor
        vae = self.model.vae  # float32 where the model's dtype would overflow it (SDXL, fp16)
        pixels = vae.decode(image_embed.to(vae.dtype), return_dict=False)[0].float()
        self._refuse_nan(latents, pixels)
        images = self.image_processor.postprocess(pixels, output_type="pil")
        return [e.unsqueeze(0).float().cpu() for e in image_embed], images

    def _refuse_nan(self, latents: torch.Tensor, pixels: torch.Tensor) -> None:
        """A frame with NaN or infinite values would be saved black: stop the run instead."""
        if torch.isfinite(pixels).all():
            return
        where = "the UNet" if not torch.isfinite(latents).all() else "the VAE decoder"
        if self.model.dtype == torch.float16:
            raise RenderFault(f"a frame came out as NaN ({where} overflowed in float16), so it "
                              "was not saved: run again with --dtype bf16 or fp32, or use a "
                              "VAE made for fp16 (an fp16-fixed SDXL VAE)")
        raise RenderFault(f"a frame came out as NaN from {where}, so it was not saved: the "
                          "model's weights may be damaged")

    def _encode(self, key: tuple[str, str], pixels: torch.Tensor) -> torch.Tensor:
        if key in self._encoded:
            self._encoded.move_to_end(key)
            return self._encoded[key]
        vae = self.model.vae
        dist = vae.encode(pixels.to(self.model.device, vae.dtype)).latent_dist
        # The distribution's mean keeps frames deterministic without another seed.
        latents = dist.mean.float() * self.scaling_factor
        self._encoded[key] = latents
        if len(self._encoded) > self._cache_size:
            self._encoded.popitem(last=False)
        return latents

    def _image_latents(self, cond: Conditioning) -> torch.Tensor:
        return self._encode((cond.key, "image"), cond.image)

    def _inpaint_inputs(self, cond: Conditioning, latent_size: torch.Size) -> torch.Tensor:
        mask = cond.mask.to(self.model.device, torch.float32)
        masked_image = cond.image.to(self.model.device) * (mask < 0.5)
        masked_latents = self._encode((cond.key, "masked"), masked_image)
        small_mask = F.interpolate(mask, size=tuple(latent_size))
        return torch.cat([small_mask, masked_latents], dim=1)

    def prepare_conditioning(self, key: str, image: Image.Image, height: int, width: int,
                             mask: Image.Image | None = None) -> Conditioning:
        """Resize and normalise PIL inputs the way diffusers' SD pipelines do."""
        pixels = self.image_processor.preprocess(image.convert("RGB"), height=height, width=width)
        mask_pixels = None
        if mask is not None:
            from diffusers.image_processor import VaeImageProcessor

            mask_proc = VaeImageProcessor(vae_scale_factor=self.model.vae_scale_factor,
                                          do_normalize=False, do_binarize=True,
                                          do_convert_grayscale=True)
            mask_pixels = mask_proc.preprocess(mask, height=height, width=width)
        # Inputs are resized before encoding, so the size is part of their identity.
        return Conditioning(key=f"{key}@{height}x{width}", image=pixels.float(), mask=mask_pixels)
