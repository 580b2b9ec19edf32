"""Tiny random diffusers folders of each model family, built inside the test run.

The shapes follow the dummy components of diffusers' own pipeline tests
(tests/pipelines/stable_diffusion_xl/*): two CLIP text encoders for SDXL, the
second with a projection (the pooled embedding), a UNet conditioned on
``text_time``; SD 1.x has the 768-wide text of CLIP ViT-L. Widths and depths are
cut to what keeps a 64×64, 2-step frame well under a second on a CPU. The tokenizer
is the built-in tiny model's (no download).
"""

from __future__ import annotations

from pathlib import Path

import torch

SD_TEXT_WIDTHS = {"sd1": 768, "sd2": 1024}
SDXL_TEXT_WIDTHS = (32, 48)  # text_encoder, text_encoder_2: concatenated 80 wide
SDXL_POOLED_WIDTH = 40  # text_encoder_2's projection
TIME_EMBED = 8


def _tokenizer():
    import tempfile

    from lse_core.tiny import parts

    with tempfile.TemporaryDirectory() as folder:  # save_pretrained writes its own copy
        return parts.tokenizer(Path(folder))


def _text_encoder(tokenizer, width: int, projection: bool = False):
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    config = CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=width, intermediate_size=37, num_hidden_layers=2,
        num_attention_heads=4, max_position_embeddings=77, hidden_act="gelu",
        projection_dim=SDXL_POOLED_WIDTH, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    return (CLIPTextModelWithProjection if projection else CLIPTextModel)(config).eval()


def _vae():
    from diffusers import AutoencoderKL

    # Four levels: the ×8 latents of every real Stable Diffusion VAE.
    return AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4,
                         down_block_types=("DownEncoderBlock2D",) * 4,
                         up_block_types=("UpDecoderBlock2D",) * 4,
                         block_out_channels=(16, 16, 32, 32), norm_num_groups=16,
                         layers_per_block=1, sample_size=64)


def _unet(in_channels: int, cross_attention_dim: int, **extra):
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        sample_size=8, in_channels=in_channels, out_channels=4, block_out_channels=(32, 64),
        layers_per_block=1, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), attention_head_dim=(2, 4),
        use_linear_projection=True, cross_attention_dim=cross_attention_dim,
        norm_num_groups=16, **extra)


def _scheduler(prediction: str):
    from diffusers import EulerDiscreteScheduler

    return EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, steps_offset=1,
                                  beta_schedule="scaled_linear", timestep_spacing="leading",
                                  prediction_type=prediction)


def build_sd(folder: Path, family: str, inpaint: bool = False, prediction: str = "epsilon",
             text_width: int | None = None) -> Path:
    """An SD 1.x- (text width 768) or SD 2.x-shaped (1024) pipeline folder; ``text_width``
    makes one of no family."""
    from diffusers import StableDiffusionInpaintPipeline, StableDiffusionPipeline

    torch.manual_seed(0)
    tokenizer = _tokenizer()
    width = text_width or SD_TEXT_WIDTHS[family]
    pipeline_class = StableDiffusionInpaintPipeline if inpaint else StableDiffusionPipeline
    pipeline = pipeline_class(
        vae=_vae(), text_encoder=_text_encoder(tokenizer, width), tokenizer=tokenizer,
        unet=_unet(9 if inpaint else 4, width), scheduler=_scheduler(prediction),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipeline.save_pretrained(folder)
    return folder


def build_sdxl(folder: Path, inpaint: bool = False, prediction: str = "epsilon",
               aesthetics: bool = False, force_zeros: bool = True) -> Path:
    """An SDXL-shaped pipeline folder: two text encoders, pooled embedding, text_time UNet.

    ``aesthetics``: a refiner-like model whose UNet reads (h, w, top, left, score)."""
    from diffusers import StableDiffusionXLImg2ImgPipeline, StableDiffusionXLInpaintPipeline

    torch.manual_seed(0)
    tokenizer = _tokenizer()
    time_ids = 5 if aesthetics else 6
    unet = _unet(9 if inpaint else 4, sum(SDXL_TEXT_WIDTHS), addition_embed_type="text_time",
                 addition_time_embed_dim=TIME_EMBED, transformer_layers_per_block=(1, 2),
                 projection_class_embeddings_input_dim=time_ids * TIME_EMBED + SDXL_POOLED_WIDTH)
    components = dict(
        vae=_vae(), text_encoder=_text_encoder(tokenizer, SDXL_TEXT_WIDTHS[0]),
        text_encoder_2=_text_encoder(tokenizer, SDXL_TEXT_WIDTHS[1], projection=True),
        tokenizer=tokenizer, tokenizer_2=tokenizer, unet=unet, scheduler=_scheduler(prediction),
        force_zeros_for_empty_prompt=force_zeros, add_watermarker=False)
    if inpaint:
        pipeline = StableDiffusionXLInpaintPipeline(**components, requires_aesthetics_score=aesthetics)
    elif aesthetics:
        pipeline = StableDiffusionXLImg2ImgPipeline(**components, requires_aesthetics_score=True)
    else:
        from diffusers import StableDiffusionXLPipeline

        pipeline = StableDiffusionXLPipeline(**components)
    pipeline.save_pretrained(folder)
    return folder


def build(folder: Path, family: str, inpaint: bool = False, prediction: str = "epsilon",
          **extra) -> Path:
    if family == "sdxl":
        return build_sdxl(folder, inpaint, prediction, **extra)
    return build_sd(folder, family, inpaint, prediction)
