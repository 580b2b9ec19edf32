"""``lse bench``: one piece of latent-space work done with diffusers' pipeline and through
lse's engine.

(a) batched pipeline: the best a diffusers user can do — one pipeline call per batch of
    frames, each frame with its own ``prompt_embeds`` and ``latents`` (its results match
    the engine's to float rounding);
(b) naive: one pipeline call per frame, batch 1 — what a simple script does;
(c) lse's engine: frames batched into one UNet call per step, CFG in the same batch,
    padded to one shape when compiled (the default on CUDA).
All use the same components, prompt embeddings, noises, scheduler and batch size, in
one process. With a compiled engine the batched pipeline is timed again with the
compiled UNet too. A last figure runs the same work as ``lse run`` does (saving every
frame) for the end-to-end cost per frame.
"""

from __future__ import annotations

import json
import resource
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch

from .engine import Engine, FrameInput, RenderSettings, size_conditioning
from .families import SD2
from .latents import encode_prompt, make_noise, slerp
from .models import (
    LoadedModel,
    assemble,
    compile_cache,
    compile_model,
    compile_wanted,
    load_model,
    make_scheduler,
    pick_device,
    pick_dtype,
)

WORKS = ("interpolation", "diffevolution", "visualize")
# Full-size architectures with random weights: timing on a GPU without downloading weights.
ARCHITECTURES = ("sd2-architecture", "sdxl-architecture")
INTERPOLATION_FRAMES = 32
GENES, GENERATIONS = 5, 4
# Dense fp16 tensor-core peaks (TFLOP/s) from the vendors' data sheets, by device name.
FP16_PEAK_TFLOPS = {"H200": 989.4, "H100 PCIe": 756.0, "H100": 989.4, "A100": 312.0,
                    "L40S": 362.1, "L4": 121.0, "A10G": 125.0, "A10": 125.0, "4090": 165.2}


@dataclass
class Work:
    """One benchmark's frames, grouped as the engine renders them (one render per group)."""

    name: str
    groups: list[list[FrameInput]]
    settings: RenderSettings

    @property
    def frames(self) -> list[FrameInput]:
        return [frame for group in self.groups for frame in group]

    @property
    def frames_out(self) -> int:
        """Pictures produced: visualize decodes one per step."""
        return len(self.frames) * (self.settings.steps if self.settings.capture_steps else 1)


@dataclass
class Measure:
    seconds: float
    s_per_frame: float
    unet_calls: int
    s_per_unet_call: float
    peak_memory_mb: float
    runs_s: list[float]  # every timed run; seconds is their median
    tflops: float | None = None  # achieved, from the counted FLOPs
    fraction_of_fp16_peak: float | None = None


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
                        vae.to(device, dtype).eval(), scheduler.config, device, dtype, SD2)
    if device.type == "cuda":
        model.unet.to(memory_format=torch.channels_last)
    return model


def sdxl_architecture(device: torch.device, dtype: torch.dtype) -> LoadedModel:
    """SDXL base's UNet, VAE and two text encoders (CLIP ViT-L, OpenCLIP bigG) with random
    weights (timing only), assembled as ``lse run`` assembles a loaded SDXL pipeline."""
    from diffusers import (
        AutoencoderKL,
        EulerDiscreteScheduler,
        StableDiffusionXLPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    tokenizer = load_model("tiny", False, torch.device("cpu"), torch.float32).tokenizer

    def text_config(width: int, layers: int, heads: int, act: str) -> CLIPTextConfig:
        return CLIPTextConfig(vocab_size=len(tokenizer), hidden_size=width,
                              intermediate_size=4 * width, num_hidden_layers=layers,
                              num_attention_heads=heads, max_position_embeddings=77,
                              hidden_act=act, projection_dim=width)

    # Built where it will run: the UNet alone is 2.6 billion parameters.
    with torch.device(device):
        unet = UNet2DConditionModel(
            sample_size=128, cross_attention_dim=2048, attention_head_dim=(5, 10, 20),
            block_out_channels=(320, 640, 1280), layers_per_block=2,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
            transformer_layers_per_block=(1, 2, 10), use_linear_projection=True,
            addition_embed_type="text_time", addition_time_embed_dim=256,
            projection_class_embeddings_input_dim=2816,
        ).to(dtype)
        vae = AutoencoderKL(
            block_out_channels=(128, 256, 512, 512), latent_channels=4, layers_per_block=2,
            down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
            sample_size=1024, scaling_factor=0.13025, force_upcast=True,
        ).to(dtype)
        text = CLIPTextModel(text_config(768, 12, 12, "quick_gelu")).to(dtype)
        text_2 = CLIPTextModelWithProjection(text_config(1280, 32, 20, "gelu")).to(dtype)
    scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, steps_offset=1,
                                       beta_schedule="scaled_linear", timestep_spacing="leading")
    pipe = StableDiffusionXLPipeline(vae=vae, text_encoder=text, text_encoder_2=text_2,
                                     tokenizer=tokenizer, tokenizer_2=tokenizer, unet=unet,
                                     scheduler=scheduler, add_watermarker=False)
    model = assemble(pipe, "sdxl-architecture (random weights)", "bench", device, dtype)
    if device.type == "cuda":
        model.unet.to(memory_format=torch.channels_last)
    return model


def save_full_size_model(folder: str, dtype: str = "fp16") -> None:
    """Write the random-weight SD 2.x architecture as a diffusers folder, so that ``lse run``
    and ``lse bench`` can load it like a downloaded model (GPU checks without weights)."""
    from diffusers import StableDiffusionPipeline

    model = full_size_model(torch.device("cpu"), pick_dtype(dtype, torch.device("cpu")))
    pipeline = StableDiffusionPipeline(
        vae=model.vae, text_encoder=model.text_encoder, tokenizer=model.tokenizer,
        unet=model.unet, scheduler=make_scheduler(model, "DPMSolverMultistepScheduler"),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipeline.save_pretrained(folder)


def architecture(name: str, device: torch.device, dtype: torch.dtype) -> LoadedModel:
    return full_size_model(device, dtype) if name == "sd2-architecture" else sdxl_architecture(device, dtype)


def make_work(name: str, model: LoadedModel, size: int, steps: int, batch_size: int) -> Work:
    a = encode_prompt(model, "a lighthouse at dusk", "blurry")
    b = encode_prompt(model, "a lighthouse in a storm", "blurry")
    scale, channels = model.vae_scale_factor, model.latent_channels
    settings = RenderSettings(steps=steps, guidance_scale=7.5,
                              scheduler="DPMSolverMultistepScheduler",
                              capture_steps=name == "visualize")
    if name == "interpolation":
        noise_a = make_noise(1, 1, size, size, channels, scale)
        noise_b = make_noise(2, 1, size, size, channels, scale)
        ts = [i / (INTERPOLATION_FRAMES - 1) for i in range(INTERPOLATION_FRAMES)]
        frames = [FrameInput(a.interpolate(b, t, "slerp"), slerp(noise_a, noise_b, t), step_seed=i)
                  for i, t in enumerate(ts)]
        return Work(name, [frames[i : i + batch_size] for i in range(0, len(frames), batch_size)],
                    settings)
    if name == "diffevolution":
        parent, groups = make_noise(1, 1, size, size, channels, scale), []
        for generation in range(GENERATIONS):
            fresh = make_noise(100 + generation, GENES, size, size, channels, scale)
            prompt = a.interpolate(b, 0.3 * (generation + 1) / GENERATIONS, "slerp")
            genes = [FrameInput(prompt, slerp(parent, fresh[i : i + 1], 0.3), step_seed=i)
                     for i in range(GENES)]
            groups.append(genes)
            parent = genes[0].noise  # the benchmark always picks gene 0
        return Work(name, groups, settings)
    if name == "visualize":
        return Work(name, [[FrameInput(a, make_noise(1, 1, size, size, channels, scale))]],
                    settings)
    raise ValueError(f"unknown work {name!r} (valid: {', '.join(WORKS)})")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_memory_mb(device: torch.device) -> float:
    """CUDA: peak allocated since the last reset. CPU: the process's peak RSS so far,
    which only grows, so later figures include the earlier runs."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _timed(model: LoadedModel, run: Callable[[], None], frames: int, unet_calls: int,
           flops: float, repeats: int) -> Measure:
    """The median of ``repeats`` runs: one run of a small model on a shared CPU varies by ±20 %."""
    device = model.device
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    runs = []
    for _ in range(repeats):
        _sync(device)
        started = time.perf_counter()
        run()
        _sync(device)
        runs.append(time.perf_counter() - started)
    seconds = statistics.median(runs)
    tflops = flops / seconds / 1e12
    peak = _device_peak_tflops(device)
    return Measure(seconds, seconds / frames, unet_calls, seconds / unet_calls,
                   _peak_memory_mb(device), [round(r, 4) for r in runs], float(f"{tflops:.4g}"),
                   float(f"{tflops / peak:.4g}") if peak else None)


def _device_peak_tflops(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in FP16_PEAK_TFLOPS.items() if key in name), None)


def _pipeline(model: LoadedModel, settings: RenderSettings):
    """The family's own diffusers pipeline over the model's components."""
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    scheduler = make_scheduler(model, settings.scheduler)
    if model.family.pooled:
        pipe = StableDiffusionXLPipeline(
            vae=model.vae, text_encoder=model.text_encoder, text_encoder_2=model.text_encoder_2,
            tokenizer=model.tokenizer, tokenizer_2=model.tokenizer_2, unet=model.unet,
            scheduler=scheduler, add_watermarker=False)
    else:
        pipe = StableDiffusionPipeline(
            vae=model.vae, text_encoder=model.text_encoder, tokenizer=model.tokenizer,
            unet=model.unet, scheduler=scheduler, safety_checker=None, feature_extractor=None,
            requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _prompt_arguments(model: LoadedModel, frame: FrameInput) -> dict:
    """A frame's prompt embedding (and pooled embedding) as pipeline arguments."""
    device, dtype = model.device, model.dtype
    embed = frame.prompt_embed
    arguments = {"prompt_embeds": embed.tokens[1:].to(device, dtype),
                 "negative_prompt_embeds": embed.tokens[:1].to(device, dtype)}
    if embed.pooled is not None:
        arguments["pooled_prompt_embeds"] = embed.pooled[1:].to(device, dtype)
        arguments["negative_pooled_prompt_embeds"] = embed.pooled[:1].to(device, dtype)
    return arguments


def _batch_arguments(model: LoadedModel, frames: list[FrameInput]) -> dict:
    """Per-frame prompt embeddings (and pooled ones) and noises, stacked for one call."""
    per_frame = [_prompt_arguments(model, frame) for frame in frames]
    arguments = {key: torch.cat([a[key] for a in per_frame]) for key in per_frame[0]}
    arguments["latents"] = torch.cat([f.noise for f in frames]).to(model.device, model.dtype)
    return arguments


def batched_pipeline(model: LoadedModel, work: Work, batch_size: int,
                     output_type: str = "pil") -> Callable[[], list]:
    """One pipeline call per batch of up to ``batch_size`` frames, batched as the engine
    batches them; returns each call's output."""
    pipe = _pipeline(model, work.settings)

    def decode_each_step(pipe, step, timestep, tensors):
        latents = tensors["latents"] / pipe.vae.config.scaling_factor
        pixels = pipe.vae.decode(latents.to(pipe.vae.dtype), return_dict=False)[0]
        pipe.image_processor.postprocess(pixels, output_type="pil")
        return tensors

    def run() -> list:
        outputs = []
        for group in work.groups:
            for start in range(0, len(group), batch_size):
                frames = group[start : start + batch_size]
                height, width = (side * model.vae_scale_factor for side in frames[0].noise.shape[-2:])
                outputs.append(pipe(
                    **_batch_arguments(model, frames), height=height, width=width,
                    num_inference_steps=work.settings.steps,
                    guidance_scale=work.settings.guidance_scale, output_type=output_type,
                    callback_on_step_end=decode_each_step if work.settings.capture_steps else None,
                ).images)
        return outputs

    return run


def naive(model: LoadedModel, work: Work) -> Callable[[], None]:
    """One pipeline call per frame; visualize decodes the latents after every step."""
    pipe = _pipeline(model, work.settings)
    device, dtype = model.device, model.dtype

    def decode_each_step(pipe, step, timestep, tensors):
        latents = tensors["latents"] / pipe.vae.config.scaling_factor
        pixels = pipe.vae.decode(latents.to(pipe.vae.dtype), return_dict=False)[0]
        pipe.image_processor.postprocess(pixels, output_type="pil")
        return tensors

    def run(frames: list[FrameInput]) -> None:
        for frame in frames:
            height, width = (side * model.vae_scale_factor for side in frame.noise.shape[-2:])
            pipe(**_prompt_arguments(model, frame), latents=frame.noise.to(device, dtype),
                 height=height, width=width, num_inference_steps=work.settings.steps,
                 guidance_scale=work.settings.guidance_scale, output_type="pil",
                 callback_on_step_end=decode_each_step if work.settings.capture_steps else None)

    return lambda: run(work.frames)


def engine_run(model: LoadedModel, work: Work, batch_size: int, pad: bool) -> Callable[[], None]:
    engine = Engine(model)

    def run() -> None:
        for group in work.groups:
            pad_to = min(batch_size, len(group)) if pad else None
            for start in range(0, len(group), batch_size):
                engine.render(group[start : start + batch_size], work.settings, pad_to=pad_to)

    return run


def count_flops(model: LoadedModel, work: Work, size: int) -> float:
    """FLOPs of the work, counted on the model (eager) with torch's flop counter."""
    from torch.utils.flop_counter import FlopCounterMode

    latent = size // model.vae_scale_factor
    sample = torch.zeros(2, model.unet.config.in_channels, latent, latent, device=model.device,
                         dtype=model.dtype)
    hidden = torch.zeros(2, 77, model.embed_width, device=model.device, dtype=model.dtype)
    added = None
    if model.family.pooled:
        ids = torch.tensor(size_conditioning(model, size, size), device=model.device,
                           dtype=model.dtype)
        added = {"text_embeds": torch.zeros(2, model.pooled_width, device=model.device,
                                            dtype=model.dtype), "time_ids": ids}
    with torch.no_grad(), FlopCounterMode(display=False) as unet:
        model.unet(sample, 500, encoder_hidden_states=hidden, added_cond_kwargs=added,
                   return_dict=False)
    with torch.no_grad(), FlopCounterMode(display=False) as vae:
        model.vae.decode(sample[:1, : model.latent_channels].to(model.vae.dtype), return_dict=False)
    decodes = work.settings.steps if work.settings.capture_steps else 1
    per_frame = unet.get_total_flops() * work.settings.steps + vae.get_total_flops() * decodes
    return per_frame * len(work.frames)


def end_to_end(model_id: str, work: Work, size: int, batch_size: int, device: str | None,
               dtype: str | None, use_compile: bool | None) -> dict:
    """The same work as ``lse run`` does it (plan, engine, saving every frame), timed from
    the run's start (model loaded) to the last frame on disk; its GIF and MP4, written
    after, are not counted."""
    import asyncio

    from .choices import Choice
    from .config import build_config
    from .events import FrameReady, Started, WaitingForChoice
    from .run import ExperimentRun, RunOptions

    experiment = {"interpolation": {"exp_identifier": "interpolation",
                                    "inter_prompts": ["a lighthouse at dusk|blurry",
                                                      "a lighthouse in a storm|blurry"],
                                    "inter_noises": [1, 2],
                                    "interpolation_steps": INTERPOLATION_FRAMES - 2},
                  "diffevolution": {"exp_identifier": "diffevolution",
                                    "prompt": "a lighthouse at dusk|blurry",
                                    "genes_per_generation": GENES, "step_size": 0.3},
                  "visualize": {"exp_identifier": "visualize-diffusion",
                                "prompt": "a lighthouse at dusk|blurry"}}[work.name]
    with tempfile.TemporaryDirectory() as folder:
        cfg = build_config({"model_identifier": "txt2img", "model_id": model_id, "height": size,
                            "width": size, "diffusion_steps": work.settings.steps,
                            "batch_size": batch_size, "rand_seed": 1, "output_path": folder,
                            "compile": use_compile, **experiment})
        run = ExperimentRun(cfg, RunOptions(device=device, dtype=dtype))
        marks: dict[str, float] = {}

        async def consume() -> int:
            frames = 0
            async for event in run.events():
                if isinstance(event, Started):
                    marks["start"] = time.perf_counter()
                elif isinstance(event, FrameReady):
                    frames += 1 + len(event.steps)  # pictures, as the engine's rows count them
                    marks["end"] = time.perf_counter()
                elif isinstance(event, WaitingForChoice):  # the benchmark picks gene 0
                    run.choose(Choice(gene=0) if event.generation < GENERATIONS else Choice(end=True))
            return frames

        frames = asyncio.run(consume())
    seconds = marks["end"] - marks["start"]
    return {"frames": frames, "seconds": round(seconds, 3), "s_per_frame": seconds / frames}


def bench(model_id: str, work_name: str, size: int, steps: int, batch_size: int,
          device: str | None, dtype: str | None, use_compile: bool | None,
          repeats: int = 3) -> dict:
    """Times the ways on the same inputs; returns what ``lse bench`` prints and saves."""
    chosen = pick_device(device)
    torch_dtype = pick_dtype(dtype, chosen)
    if model_id in ARCHITECTURES:
        model = architecture(model_id, chosen, torch_dtype)
    else:
        model = load_model(model_id, False, chosen, torch_dtype)
    work = make_work(work_name, model, size, steps, batch_size)
    flops = count_flops(model, work, size)
    frames = work.frames_out
    naive_calls = len(work.frames) * steps
    engine_calls = sum(-(-len(g) // batch_size) for g in work.groups) * steps  # batched calls too
    compiled = compile_wanted(use_compile, chosen)
    result: dict = {
        "work": work_name, "model": model.model_id, "device": str(chosen),
        "device_name": torch.cuda.get_device_name(chosen) if chosen.type == "cuda" else "cpu",
        "dtype": str(torch_dtype), "frames": frames, "size": size, "steps": steps,
        "batch_size": batch_size, "repeats": repeats, "compiled": compiled,
        "torch_threads": torch.get_num_threads(),
        "tflop_per_frame": round(flops / frames / 1e12, 4),
        "device_fp16_peak_tflops": _device_peak_tflops(chosen),
    }
    first = Work(work.name, work.groups[:1], work.settings)  # warm-ups at the timed shapes

    def time_pipeline() -> dict:
        batched_pipeline(model, first, batch_size)()
        return asdict(_timed(model, batched_pipeline(model, work, batch_size), frames,
                             engine_calls, flops, repeats))

    with torch.no_grad(), compile_cache():
        naive(model, Work(work.name, [work.frames[:1]], work.settings))()
        result["naive"] = asdict(_timed(model, naive(model, work), frames, naive_calls, flops,
                                        repeats))
        result["batched_pipeline"] = time_pipeline()
        if compiled:
            compile_model(model)
        engine = engine_run(model, work, batch_size, pad=compiled)
        engine_run(model, first, batch_size, compiled)()  # padded as timed
        result["engine"] = asdict(_timed(model, engine, frames, engine_calls, flops, repeats))
        if compiled:
            result["batched_pipeline_compiled"] = time_pipeline()
    # Like for like: the compiled engine against the pipeline with the same compiled UNet.
    pipeline = result["batched_pipeline_compiled" if compiled else "batched_pipeline"]
    result["speedup_vs_batched_pipeline"] = pipeline["seconds"] / result["engine"]["seconds"]
    result["speedup"] = result["naive"]["seconds"] / result["engine"]["seconds"]
    if model_id not in ARCHITECTURES:
        e2e = end_to_end(model_id, work, size, batch_size, device, dtype, use_compile)
        e2e["vs_engine"] = e2e["s_per_frame"] / result["engine"]["s_per_frame"]
        result["end_to_end"] = e2e
    return result


def main(args) -> int:
    result = bench(args.model, args.work, args.size, args.steps, args.batch_size,
                   args.device, args.dtype, args.compile, args.repeats)
    for label in ("naive", "batched_pipeline", "batched_pipeline_compiled", "engine"):
        if label not in result:
            continue
        m = result[label]
        flops = f"  {m['tflops']:.3g} TFLOP/s" if m["tflops"] is not None else ""
        peak = (f" ({m['fraction_of_fp16_peak']:.0%} of fp16 peak)"
                if m["fraction_of_fp16_peak"] is not None else "")
        print(f"{label:>25}: {m['seconds']:.2f}s  {m['s_per_frame']:.3f} s/frame  "
              f"{m['s_per_unet_call'] * 1000:.1f} ms per UNet call ({m['unet_calls']} calls)  "
              f"peak {m['peak_memory_mb']:.0f} MB{flops}{peak}")
    if "end_to_end" in result:
        e2e = result["end_to_end"]
        print(f"{'lse run (end to end)':>25}: {e2e['s_per_frame']:.3f} s/frame with every frame "
              f"saved ({e2e['frames']} frames), {e2e['vs_engine']:.2f}x the engine's")
    print(f"speedup against the batched pipeline: {result['speedup_vs_batched_pipeline']:.2f}x; "
          f"against one pipeline call per frame: {result['speedup']:.2f}x "
          f"[{result['work']}, {result['model']}, {result['device_name']}, {result['dtype']}, "
          f"{result['frames']} frames {result['size']}x{result['size']}, {result['steps']} steps, "
          f"batch {result['batch_size']}{', compiled' if result['compiled'] else ''}]")
    if args.json:
        write_result(Path(args.json), result)
    return 0


def write_result(path: Path, result: dict) -> None:
    """A benchmark's results as JSON (its folder made if need be), and where they went."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2))
    print(f"wrote {path}")
