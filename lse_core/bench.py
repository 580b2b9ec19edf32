"""``lse bench``: the same interpolation rendered the naive way and through lse's engine.

(a) one diffusers pipeline call per frame, batch 1 — what a simple script does;
(b) lse's engine: frames batched into one UNet call per step, CFG in the same batch.
Both use the same components, prompt embeddings, noises and scheduler.
"""

from __future__ import annotations

import json
import math
import resource
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from .engine import Engine, FrameInput, RenderSettings
from .latents import encode_prompt, make_noise, slerp
from .models import LoadedModel, compile_unet, load_model, pick_device, pick_dtype


@dataclass
class Measure:
    seconds: float
    frames_per_s: float
    unet_calls: int
    s_per_unet_call: float
    peak_memory_mb: float


def _peak_memory_mb(device: torch.device) -> float:
    """CUDA: peak allocated since the last reset. CPU: the process's peak RSS so far,
    which only grows, so the engine's figure includes the naive run before it."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def full_size_model(device: torch.device, dtype: torch.dtype) -> LoadedModel:
    """SD 2.x's UNet, VAE and text encoder architectures with random weights (timing only)."""
    from diffusers import AutoencoderKL, DPMSolverMultistepScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    tiny = load_model("tiny", False, torch.device("cpu"), torch.float32)
    unet = UNet2DConditionModel(
        sample_size=96, cross_attention_dim=1024, attention_head_dim=(5, 10, 20, 20),
        use_linear_projection=True, block_out_channels=(320, 640, 1280, 1280), layers_per_block=2,
    )
    vae = AutoencoderKL(
        block_out_channels=(128, 256, 512, 512), latent_channels=4, layers_per_block=2,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        sample_size=768,
    )
    text = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tiny.tokenizer), hidden_size=1024, intermediate_size=4096,
        num_hidden_layers=23, num_attention_heads=16, max_position_embeddings=77,
        hidden_act="gelu"))
    scheduler = DPMSolverMultistepScheduler(beta_start=0.00085, beta_end=0.012,
                                            beta_schedule="scaled_linear", steps_offset=1)
    model = LoadedModel("sd2-architecture (random weights)", "bench", tiny.tokenizer,
                        text.to(device, dtype).eval(), unet.to(device, dtype).eval(),
                        vae.to(device, dtype).eval(), scheduler.config, device, dtype)
    if device.type == "cuda":
        model.unet.to(memory_format=torch.channels_last)
    return model


def interpolation_frames(model: LoadedModel, frames: int, size: int) -> list[FrameInput]:
    a = encode_prompt(model, "a lighthouse at dusk", "blurry")
    b = encode_prompt(model, "a lighthouse in a storm", "blurry")
    noise_a = make_noise(1, 1, size, size, model.latent_channels, model.vae_scale_factor)
    noise_b = make_noise(2, 1, size, size, model.latent_channels, model.vae_scale_factor)
    ts = [i / (frames - 1) for i in range(frames)]
    return [FrameInput(slerp(a, b, t), slerp(noise_a, noise_b, t), step_seed=i)
            for i, t in enumerate(ts)]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_naive(model: LoadedModel, frames: list[FrameInput], settings: RenderSettings) -> Measure:
    from diffusers import StableDiffusionPipeline

    from .models import make_scheduler

    pipe = StableDiffusionPipeline(
        vae=model.vae, text_encoder=model.text_encoder, tokenizer=model.tokenizer, unet=model.unet,
        scheduler=make_scheduler(model, settings.scheduler), safety_checker=None,
        feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    device, dtype = model.device, model.dtype
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    _sync(device)
    started = time.perf_counter()
    for frame in frames:
        pipe(prompt_embeds=frame.prompt_embed[1:].to(device, dtype),
             negative_prompt_embeds=frame.prompt_embed[:1].to(device, dtype),
             latents=frame.noise.to(device, dtype), num_inference_steps=settings.steps,
             guidance_scale=settings.guidance_scale, output_type="pil")
    _sync(device)
    seconds = time.perf_counter() - started
    calls = len(frames) * settings.steps
    return Measure(seconds, len(frames) / seconds, calls, seconds / calls, _peak_memory_mb(device))


def run_engine(model: LoadedModel, frames: list[FrameInput], settings: RenderSettings,
               batch_size: int) -> Measure:
    engine = Engine(model)
    device = model.device
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    _sync(device)
    started = time.perf_counter()
    for start in range(0, len(frames), batch_size):
        engine.render(frames[start : start + batch_size], settings)
    _sync(device)
    seconds = time.perf_counter() - started
    calls = math.ceil(len(frames) / batch_size) * settings.steps
    return Measure(seconds, len(frames) / seconds, calls, seconds / calls, _peak_memory_mb(device))


def bench(model_id: str, frames: int, size: int, steps: int, batch_size: int,
          device: str | None, dtype: str | None, use_compile: bool) -> dict:
    """Times both ways on the same inputs; returns what ``lse bench`` prints and saves."""
    chosen = pick_device(device)
    torch_dtype = pick_dtype(dtype, chosen)
    if model_id == "sd2-architecture":
        model = full_size_model(chosen, torch_dtype)
    else:
        model = load_model(model_id, False, chosen, torch_dtype)
    if use_compile:
        compile_unet(model)
    settings = RenderSettings(steps=steps, guidance_scale=7.5, scheduler="DPMSolverMultistepScheduler")
    inputs = interpolation_frames(model, frames, size)
    with torch.no_grad():
        # One warm-up frame each, so neither side pays for first-call set-up.
        run_naive(model, inputs[:1], settings)
        run_engine(model, inputs[:1], settings, 1)
        naive = run_naive(model, inputs, settings)
        batched = run_engine(model, inputs, settings, batch_size)
    return {
        "model": model.model_id, "device": str(chosen), "dtype": str(torch_dtype),
        "frames": frames, "size": size, "steps": steps, "batch_size": batch_size,
        "torch_threads": torch.get_num_threads(),
        "naive": asdict(naive), "engine": asdict(batched),
        "speedup": naive.seconds / batched.seconds,
    }


def main(args) -> int:
    result = bench(args.model, args.frames, args.size, args.steps, args.batch_size,
                   args.device, args.dtype, args.compile)
    for label in ("naive", "engine"):
        m = result[label]
        print(f"{label:>6}: {m['seconds']:.2f}s  {m['frames_per_s']:.2f} frames/s  "
              f"{m['s_per_unet_call'] * 1000:.1f} ms per UNet call ({m['unet_calls']} calls)  "
              f"peak {m['peak_memory_mb']:.0f} MB")
    print(f"speedup (naive time / engine time): {result['speedup']:.2f}x "
          f"[{result['model']}, {result['device']}, {result['dtype']}, {result['frames']} frames "
          f"{result['size']}x{result['size']}, {result['steps']} steps, batch {result['batch_size']}]")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2))
        print(f"wrote {args.json}")
    return 0
