"""The engine against diffusers' own Stable Diffusion pipelines and the original tool's rules.

Same prompt embeddings, same noise, same scheduler: the engine's final latents must
equal what StableDiffusion{,Img2Img,Inpaint}Pipeline compute, for epsilon- and
v-prediction (SD 2.1 at 768 px is a v-prediction model).
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
from diffusers import (
    StableDiffusionImg2ImgPipeline,
    StableDiffusionInpaintPipeline,
    StableDiffusionPipeline,
)
from PIL import Image

from lse_core.engine import Engine, FrameInput, RenderSettings, steps_run
from lse_core.latents import encode_prompt, make_noise
from lse_core.models import load_model, make_scheduler

SIZE, STEPS, SEED = 64, 3, 5
PIPELINES = {"txt2img": StableDiffusionPipeline, "img2img": StableDiffusionImg2ImgPipeline,
             "inpaint": StableDiffusionInpaintPipeline}


def _model(kind: str, prediction: str):
    model = load_model("tiny", kind == "inpaint", torch.device("cpu"), torch.float32)
    # SD 2.1's own scheduler config says v_prediction; the weights stay the same.
    config = {**model.scheduler_config, "prediction_type": prediction}
    return dataclasses.replace(model, scheduler_config=config)


def _pipeline(model, kind: str, scheduler: str):
    pipe = PIPELINES[kind](vae=model.vae, text_encoder=model.text_encoder,
                           tokenizer=model.tokenizer, unet=model.unet,
                           scheduler=make_scheduler(model, scheduler), safety_checker=None,
                           feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _picture() -> Image.Image:
    image = Image.new("RGB", (SIZE, SIZE), (30, 90, 200))
    image.paste((240, 200, 40), (8, 24, 40, 56))
    return image


def _mask() -> Image.Image:
    mask = Image.new("L", (SIZE, SIZE), 0)
    mask.paste(255, (32, 0, 64, 64))
    return mask


def _mean_latents(model, pixels: torch.Tensor) -> torch.Tensor:
    # lse encodes images to the distribution's mean (a documented difference from the
    # pipelines, which sample); the pipelines accept ready latents, so both start alike.
    return model.vae.encode(pixels).latent_dist.mean * model.vae.config.scaling_factor


def _relative_gap(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / a.abs().max()).item()


@pytest.mark.parametrize("prediction", ["epsilon", "v_prediction"])
@pytest.mark.parametrize("scheduler", ["DPMSolverMultistepScheduler", "DDIMScheduler",
                                       "EulerDiscreteScheduler"])
@pytest.mark.parametrize("kind", ["txt2img", "img2img", "inpaint"])
@torch.no_grad()
def test_engine_equals_the_diffusers_pipeline(kind, scheduler, prediction):
    model = _model(kind, prediction)
    engine = Engine(model)
    pipe = _pipeline(model, kind, scheduler)
    embed = encode_prompt(model, "a lighthouse on a cliff", "blurry")
    noise = make_noise(SEED, 1, SIZE, SIZE)
    common = dict(prompt_embeds=embed.tokens[1:], negative_prompt_embeds=embed.tokens[:1],
                  num_inference_steps=STEPS, guidance_scale=7.5, output_type="latent")
    conditioning = None
    if kind == "txt2img":
        expected = pipe(latents=noise, **common).images
    elif kind == "img2img":
        conditioning = engine.prepare_conditioning("picture", _picture(), SIZE, SIZE)
        latents = _mean_latents(model, pipe.image_processor.preprocess(_picture(), SIZE, SIZE))
        expected = pipe(image=latents, strength=0.7, **common,
                        generator=torch.Generator("cpu").manual_seed(SEED)).images
    else:
        conditioning = engine.prepare_conditioning("picture", _picture(), SIZE, SIZE, _mask())
        pixels = pipe.image_processor.preprocess(_picture(), SIZE, SIZE)
        mask = pipe.mask_processor.preprocess(_mask(), SIZE, SIZE)
        masked = _mean_latents(model, pixels * (mask < 0.5))
        expected = pipe(image=_picture(), mask_image=_mask(), masked_image_latents=masked,
                        latents=noise, height=SIZE, width=SIZE, **common).images
    settings = RenderSettings(steps=STEPS, guidance_scale=7.5, scheduler=scheduler, strength=0.7)
    [frame] = engine.render([FrameInput(embed, noise, conditioning=conditioning)], settings)
    latents = frame.image_embed * model.vae.config.scaling_factor
    assert _relative_gap(expected, latents) <= 1e-4


STEP_TABLE = [(2, 0.8), (25, 0.3), (10, 0.7), (3, 1.0), (7, 0.29), (100, 0.07), (30, 0.1),
              (50, 0.999), (4, 0.5)]


@pytest.mark.parametrize("steps,strength", STEP_TABLE)
def test_img2img_runs_as_many_steps_as_the_diffusers_pipeline(steps, strength):
    model = _model("img2img", "epsilon")
    pipe = _pipeline(model, "img2img", "DPMSolverMultistepScheduler")
    pipe.scheduler.set_timesteps(steps)
    timesteps, expected = pipe.get_timesteps(steps, strength, "cpu")
    assert len(timesteps) == expected
    settings = RenderSettings(steps=steps, guidance_scale=7.5, scheduler="DPMSolverMultistep",
                              strength=strength)
    assert steps_run(settings, img2img=True) == expected
    if steps <= 4:  # and the engine really runs that many
        engine = Engine(model)
        cond = engine.prepare_conditioning("picture", _picture(), SIZE, SIZE)
        seen = []
        engine.render([FrameInput(encode_prompt(model, "a", ""), make_noise(1, 1, SIZE, SIZE),
                                  conditioning=cond)], settings,
                      on_step=lambda step, total: seen.append(step))
        assert seen == list(range(1, expected + 1))


def _render_with_guidance(engine: Engine, embed: torch.Tensor, guidance: float) -> torch.Tensor:
    settings = RenderSettings(steps=STEPS, guidance_scale=guidance, scheduler="DDIM")
    [frame] = engine.render([FrameInput(embed, make_noise(SEED, 1, SIZE, SIZE))], settings)
    return frame.image_embed


@torch.no_grad()
def test_guidance_below_one_is_applied_as_the_original_does():
    model = _model("txt2img", "epsilon")
    engine = Engine(model)
    embed = encode_prompt(model, "a red boat", "fog")
    at = {g: _render_with_guidance(engine, embed, g) for g in (0.0, 0.5, 1.0)}
    assert _relative_gap(at[0.0], at[0.5]) > 1e-3
    assert _relative_gap(at[0.5], at[1.0]) > 1e-3
    assert _relative_gap(at[0.0], at[1.0]) > 1e-3
    # g = 0 is the negative prompt's prediction alone, g = 1 the positive one alone
    negative_only = dataclasses.replace(embed, tokens=torch.stack([embed.tokens[0], embed.tokens[0]]))
    assert _relative_gap(_render_with_guidance(engine, negative_only, 1.0), at[0.0]) <= 1e-5
    # g = 1: the conditional prediction, as the diffusers pipeline computes it without CFG
    expected = _pipeline(model, "txt2img", "DDIMScheduler")(
        prompt_embeds=embed.tokens[1:], negative_prompt_embeds=embed.tokens[:1], num_inference_steps=STEPS,
        guidance_scale=1.0, latents=make_noise(SEED, 1, SIZE, SIZE), output_type="latent").images
    assert _relative_gap(expected, at[1.0] * model.vae.config.scaling_factor) <= 1e-4
