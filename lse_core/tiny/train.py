"""Train the ``tiny`` model on procedural scenes: ``python -m lse_core.tiny.train``.

Seeded and CPU-only; the defaults are the run whose weights ship in
``lse_core/tiny/weights``. Stages:

1. the VAE (×8, 4 latent channels) on freshly drawn scenes;
2. the frozen text encoder's embedding of every training caption, and the
   VAE latents of a pool of scenes;
3. the txt2img UNet: epsilon prediction on SD 2.x's noise schedule, with 10 %
   empty prompts so that classifier-free guidance has an unconditional model;
4. the inpainting UNet (4 noisy + 1 mask + 4 masked-image latent channels,
   as diffusers' SD inpainting pipeline feeds it), started from the txt2img
   UNet and trained on random masks.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from ..latents import encode_texts
from . import parts, scenes

if TYPE_CHECKING:
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from PIL import Image
    from transformers import CLIPTextModel, CLIPTokenizer

WEIGHTS = Path(__file__).parent / "weights"
SIZE = parts.NATIVE_LATENT * 8
CFG_DROPOUT = 0.1  # share of captions replaced by the empty prompt
MIN_SNR_GAMMA = 5.0  # min-SNR loss weighting: faster convergence for small budgets
SHAPE_WEIGHT = 4.0  # extra VAE loss weight of shape pixels
KL_WEIGHT = 1e-3  # per pixel; enough to keep the latent space smooth for diffusion


def log(message: str, started: float) -> None:
    print(f"[{time.monotonic() - started:7.1f}s] {message}", flush=True)


def to_tensor(images: list[Image.Image]) -> torch.Tensor:
    """PIL images → (N, 3, H, W) in [-1, 1], as SD's VAE expects."""
    array = np.stack([np.asarray(image) for image in images])
    return Pool.images(torch.from_numpy(array).permute(0, 3, 1, 2))


def cosine_optimizer(params, lr: float, steps: int) -> tuple:
    from diffusers.optimization import get_cosine_schedule_with_warmup

    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    return optimizer, get_cosine_schedule_with_warmup(optimizer, min(100, steps // 10), steps)


def train_vae(steps: int, batch: int, rng: random.Random, started: float) -> AutoencoderKL:
    vae = parts.vae().train()
    with torch.no_grad():
        # Start with a nearly deterministic encoder (posterior std e^-4): from the
        # default std of 1 the noise drowns the signal and the decoder learns
        # nothing for hundreds of steps. The KL term widens it again.
        vae.quant_conv.bias[vae.config.latent_channels :] = -8.0
    optimizer, schedule = cosine_optimizer(vae.parameters(), 1e-3, steps)
    for step in range(1, steps + 1):
        pixels = to_tensor([scenes.render(scenes.random_scene(rng), SIZE, rng) for _ in range(batch)])
        posterior = vae.encode(pixels).latent_dist
        decoded = vae.decode(posterior.sample()).sample
        # A shape covers a few percent of the pixels: weight them up, or their
        # colour is learned long after the background's. The corner pixel is
        # always background (shapes are kept inside the image).
        shape = (pixels - pixels[..., :1, :1]).abs().sum(dim=1, keepdim=True) > 0.05
        recon = (F.mse_loss(decoded, pixels, reduction="none") * (1 + SHAPE_WEIGHT * shape)).mean()
        kl = posterior.kl().mean() / pixels[0].numel()
        loss = recon + KL_WEIGHT * kl
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        if step % 50 == 0 or step == steps:
            log(f"vae {step}/{steps} recon {recon.item():.5f} kl {kl.item():.4f}", started)
    return vae.eval()


class Pool:
    """A fixed set of scenes with their caption embeddings and VAE posteriors.

    The first ``count`` show the whole shape; ``cut`` more have it cut by the
    image edge, as outpainting leaves it, and only the inpainting UNet sees
    those (without them it answers a cut shape by painting another one).
    """

    def __init__(self, count: int, cut: int, vae: AutoencoderKL, text_encoder: CLIPTextModel,
                 tokenizer: CLIPTokenizer, rng: random.Random, started: float) -> None:
        chosen = [scenes.random_scene(rng) for _ in range(count)]
        chosen += [replace(scenes.random_scene(rng), position="") for _ in range(cut)]
        self.whole = count
        self.pixels = torch.from_numpy(np.stack(
            [np.asarray(scenes.render(scene, SIZE, rng, cut=i >= count))
             for i, scene in enumerate(chosen)])).permute(0, 3, 1, 2)
        captions = sorted({scene.caption for scene in chosen})
        index = {caption: i for i, caption in enumerate(captions)}
        self.caption_index = torch.tensor([index[scene.caption] for scene in chosen])
        self.embeds = encode_captions(text_encoder, tokenizer, captions)
        self.empty = encode_captions(text_encoder, tokenizer, [""])[0]
        log(f"pool: {count} + {cut} cut scenes, {len(captions)} captions embedded", started)
        with torch.no_grad():
            posteriors = [vae.encode(self.images(chunk)).latent_dist for chunk in self.pixels.split(256)]
        self.mean = torch.cat([p.mean for p in posteriors])
        self.std = torch.cat([p.std for p in posteriors])
        # SD's convention: latents are scaled to unit variance before diffusion.
        self.scaling_factor = float(1 / (self.mean + self.std * torch.randn_like(self.std)).std())
        log(f"pool latents encoded, scaling factor {self.scaling_factor:.4f}", started)

    @staticmethod
    def images(pixels: torch.Tensor) -> torch.Tensor:
        """uint8 (N, 3, H, W) → float in [-1, 1]."""
        return pixels.float() / 127.5 - 1

    def batch(self, size: int, cut: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(indices, scaled latents sampled from the posterior, text embeddings with CFG dropout);
        ``cut``: cut scenes may be drawn too."""
        idx = torch.randint(len(self.pixels) if cut else self.whole, (size,))
        latents = (self.mean[idx] + self.std[idx] * torch.randn_like(self.mean[idx])) * self.scaling_factor
        embeds = self.embeds[self.caption_index[idx]].clone()
        embeds[torch.rand(size) < CFG_DROPOUT] = self.empty
        return idx, latents, embeds


def encode_captions(text_encoder: CLIPTextModel, tokenizer: CLIPTokenizer,
                    captions: list[str]) -> torch.Tensor:
    """Every caption's embedding, as rendering computes it, 64 captions at a time."""
    return torch.cat([encode_texts(tokenizer, text_encoder, captions[start : start + 64])
                      for start in range(0, len(captions), 64)])


def random_masks(count: int, rng: random.Random) -> torch.Tensor:
    """(N, 1, H, W) binary masks, 1 = repaint: boxes, edge bands (outpainting),
    borders (zooming out) and, sometimes, everything."""
    masks = torch.zeros(count, 1, SIZE, SIZE)
    for mask in masks[:, 0]:
        kind = rng.random()
        if kind < 0.4:
            h, w = rng.randint(SIZE // 6, SIZE * 3 // 4), rng.randint(SIZE // 6, SIZE * 3 // 4)
            top, left = rng.randint(0, SIZE - h), rng.randint(0, SIZE - w)
            mask[top : top + h, left : left + w] = 1
        elif kind < 0.75:
            band = rng.randint(SIZE // 8, SIZE // 2)
            side = rng.choice(("left", "right", "top", "bottom"))
            if side == "left":
                mask[:, :band] = 1
            elif side == "right":
                mask[:, -band:] = 1
            elif side == "top":
                mask[:band] = 1
            else:
                mask[-band:] = 1
        elif kind < 0.9:
            border = rng.randint(SIZE // 16, SIZE // 4)
            mask[:] = 1
            mask[border:-border, border:-border] = 0
        else:
            mask[:] = 1
    return masks


def diffusion_loss(unet: UNet2DConditionModel, noise_scheduler: DDPMScheduler,
                   latents: torch.Tensor, embeds: torch.Tensor,
                   extra: torch.Tensor | None = None) -> torch.Tensor:
    """Epsilon-prediction loss with min-SNR weighting; ``extra`` = inpainting channels."""
    from diffusers.training_utils import compute_snr

    noise = torch.randn_like(latents)
    timesteps = torch.randint(0, noise_scheduler.config.num_train_timesteps, (len(latents),))
    noisy = noise_scheduler.add_noise(latents, noise, timesteps)
    if extra is not None:
        noisy = torch.cat([noisy, extra], dim=1)
    pred = unet(noisy, timesteps, encoder_hidden_states=embeds).sample
    snr = compute_snr(noise_scheduler, timesteps)
    weight = snr.clamp(max=MIN_SNR_GAMMA) / snr
    return (weight * F.mse_loss(pred, noise, reduction="none").mean(dim=(1, 2, 3))).mean()


def train_unet(unet: UNet2DConditionModel, pool: Pool, vae: AutoencoderKL, steps: int,
               batch: int, lr: float, rng: random.Random, started: float,
               inpaint: bool) -> UNet2DConditionModel:
    from diffusers import DDPMScheduler
    from diffusers.training_utils import EMAModel

    name = "inpaint unet" if inpaint else "unet"
    noise_scheduler = DDPMScheduler.from_config(parts.scheduler().config)
    unet.train()
    ema = EMAModel(unet.parameters(), decay=0.999, use_ema_warmup=True, power=2 / 3)
    optimizer, schedule = cosine_optimizer(unet.parameters(), lr, steps)
    for step in range(1, steps + 1):
        idx, latents, embeds = pool.batch(batch, cut=inpaint)
        extra = None
        if inpaint:
            masks = random_masks(batch, rng)
            with torch.no_grad():
                # As the engine and diffusers do: repainted pixels become 0 (grey),
                # the encoder's mean is the masked image's latent.
                masked = vae.encode(pool.images(pool.pixels[idx]) * (masks < 0.5)).latent_dist.mean
            small_masks = F.interpolate(masks, size=latents.shape[-2:])
            extra = torch.cat([small_masks, masked * pool.scaling_factor], dim=1)
        loss = diffusion_loss(unet, noise_scheduler, latents, embeds, extra)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        ema.step(unet.parameters())
        if step % 50 == 0 or step == steps:
            log(f"{name} {step}/{steps} loss {loss.item():.4f}", started)
    ema.copy_to(unet.parameters())
    return unet.eval()


def inpaint_from(unet: UNet2DConditionModel) -> UNet2DConditionModel:
    """An inpainting UNet started from the txt2img one; the 5 new input channels start at zero,
    so it begins as the txt2img model (how SD 2's inpainting model was started too)."""
    inpaint = parts.unet(inpaint=True)
    state = unet.state_dict()
    weight = torch.zeros_like(inpaint.conv_in.weight)
    weight[:, :4] = state["conv_in.weight"]
    state["conv_in.weight"] = weight
    inpaint.load_state_dict(state)
    return inpaint


def save(out: Path, vae: AutoencoderKL, unet: UNet2DConditionModel,
         inpaint: UNet2DConditionModel, scaling_factor: float, probe: list[float],
         record: dict) -> None:
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    for name, model in (("vae", vae), ("unet", unet), ("unet-inpaint", inpaint)):
        # fp16 halves the shipped size; the loader upcasts to the dtype asked for.
        state = {k: v.detach().half().contiguous() for k, v in model.state_dict().items()}
        save_file(state, str(out / f"{name}.safetensors"))
    meta = {"scaling_factor": scaling_factor, "text_probe": probe, "training": record}
    (out / "tiny.json").write_text(json.dumps(meta, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lse_core.tiny.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=WEIGHTS, help="where the weights go")
    parser.add_argument("--seed", type=int, default=0)
    # One thread: on a shared 2-core machine a second thread mostly waits for
    # the other processes and can make a step several times slower.
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--vae-steps", type=int, default=1000)
    parser.add_argument("--vae-batch", type=int, default=16)
    parser.add_argument("--pool", type=int, default=16000, help="scenes the UNets learn from")
    parser.add_argument("--cut-pool", type=int, default=6000,
                        help="scenes with the shape cut by the edge, for the inpainting UNet")
    parser.add_argument("--unet-steps", type=int, default=2600)
    parser.add_argument("--inpaint-steps", type=int, default=800)
    parser.add_argument("--batch", type=int, default=32, help="UNet batch")
    args = parser.parse_args(argv)

    from .. import models

    models.quiet_libraries()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    started = time.monotonic()

    vae = train_vae(args.vae_steps, args.vae_batch, rng, started)
    for param in vae.parameters():
        param.requires_grad_(False)
    tokenizer = parts.tokenizer(Path(tempfile.mkdtemp(prefix="lse-tiny-tokenizer-")))
    text_encoder = parts.text_encoder(tokenizer)
    pool = Pool(args.pool, args.cut_pool, vae, text_encoder, tokenizer, rng, started)
    unet = train_unet(parts.unet(inpaint=False), pool, vae, args.unet_steps, args.batch, 1e-3,
                      rng, started, inpaint=False)
    inpaint = train_unet(inpaint_from(unet), pool, vae, args.inpaint_steps, args.batch, 5e-4,
                         rng, started, inpaint=True)
    seconds = time.monotonic() - started
    record = {
        "command": "python -m lse_core.tiny.train " + " ".join(argv if argv is not None else sys.argv[1:]),
        "seed": args.seed, "threads": args.threads, "vae_steps": args.vae_steps,
        "vae_batch": args.vae_batch, "pool": args.pool, "cut_pool": args.cut_pool,
        "unet_steps": args.unet_steps, "inpaint_steps": args.inpaint_steps, "batch": args.batch,
        "seconds": round(seconds), "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "torch": torch.__version__,
    }
    save(args.out, vae, unet, inpaint, pool.scaling_factor, parts.text_probe(text_encoder, tokenizer),
         record)
    log(f"done in {seconds / 60:.1f} min; weights in {args.out}", started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
