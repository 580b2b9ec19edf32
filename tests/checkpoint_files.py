"""Tiny random SD 1.x-, SD 2.x- and SDXL-shaped diffusers pipelines, and the same weights
written as ONE .safetensors file in the original (LDM / web-UI) key layout.

The key layout is that of the original Stable Diffusion and SDXL code bases, as
diffusers' conversion scripts read and write it; the mapping below is written for
any number of blocks and layers, so tiny models fit it too.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

WEIGHT_SUFFIXES = (".safetensors", ".bin")
SD1_WIDTH, SD2_WIDTH = 768, 1024
SDXL_WIDTHS = (32, 48)  # CLIP ViT-L-like and OpenCLIP bigG-like encoders must differ
SDXL_POOLED = 40
SDXL_TIME_EMBED = 8


# --- tiny pipelines --------------------------------------------------------------------------

def _tokenizer(folder: Path):
    from lse_core.tiny import parts

    return parts.tokenizer(folder)


def _text_encoder(tokenizer, width: int, projection: bool = False, act: str = "quick_gelu"):
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    config = CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=width, intermediate_size=37, num_hidden_layers=2,
        num_attention_heads=4, max_position_embeddings=77, hidden_act=act,
        projection_dim=SDXL_POOLED, bos_token_id=0, eos_token_id=2, pad_token_id=1)
    return (CLIPTextModelWithProjection if projection else CLIPTextModel)(config).eval()


def _vae(scaling_factor: float = 0.18215):
    from diffusers import AutoencoderKL

    return AutoencoderKL(down_block_types=("DownEncoderBlock2D",) * 4,
                         up_block_types=("UpDecoderBlock2D",) * 4, block_out_channels=(16, 16, 32, 32),
                         norm_num_groups=16, layers_per_block=1, latent_channels=4, sample_size=64,
                         scaling_factor=scaling_factor)


def _unet(in_channels: int, cross_attention_dim: int, linear: bool, **extra):
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        sample_size=8, in_channels=in_channels, out_channels=4, block_out_channels=(32, 64),
        layers_per_block=2, down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D"), attention_head_dim=(2, 4),
        use_linear_projection=linear, cross_attention_dim=cross_attention_dim, norm_num_groups=16,
        **extra)


def _scheduler(prediction: str = "epsilon"):
    from diffusers import EulerDiscreteScheduler

    return EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                  steps_offset=1, timestep_spacing="leading",
                                  prediction_type=prediction)


def build_pipeline(family: str, folder: Path, inpaint: bool = False) -> Path:
    """A tiny random pipeline of ``family`` (sd1, sd2, sdxl) saved as a diffusers folder."""
    import diffusers

    torch.manual_seed({"sd1": 1, "sd2": 2, "sdxl": 3}[family])
    tokenizer = _tokenizer(folder / "tokenizer-src")
    channels = 9 if inpaint else 4
    if family == "sdxl":
        unet = _unet(channels, sum(SDXL_WIDTHS), True, addition_embed_type="text_time",
                     addition_time_embed_dim=SDXL_TIME_EMBED, transformer_layers_per_block=(1, 2),
                     projection_class_embeddings_input_dim=6 * SDXL_TIME_EMBED + SDXL_POOLED)
        name = "StableDiffusionXLInpaintPipeline" if inpaint else "StableDiffusionXLPipeline"
        pipeline = getattr(diffusers, name)(
            vae=_vae(0.13025), text_encoder=_text_encoder(tokenizer, SDXL_WIDTHS[0]),
            text_encoder_2=_text_encoder(tokenizer, SDXL_WIDTHS[1], projection=True, act="gelu"),
            tokenizer=tokenizer, tokenizer_2=tokenizer, unet=unet, scheduler=_scheduler())
    else:
        width = SD1_WIDTH if family == "sd1" else SD2_WIDTH
        name = "StableDiffusionInpaintPipeline" if inpaint else "StableDiffusionPipeline"
        pipeline = getattr(diffusers, name)(
            vae=_vae(), text_encoder=_text_encoder(tokenizer, width,
                                                   act="quick_gelu" if family == "sd1" else "gelu"),
            tokenizer=tokenizer, unet=_unet(channels, width, linear=family == "sd2"),
            scheduler=_scheduler("v_prediction" if family == "sd2" else "epsilon"),
            safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    shutil.rmtree(folder / "tokenizer-src")
    pipeline.save_pretrained(folder)
    return folder


def copy_configs(pipeline_folder: Path, destination: Path) -> Path:
    """The pipeline's configs and tokenizer files without its weights: the config folder a
    user puts beside a single-file checkpoint."""
    for file in pipeline_folder.rglob("*"):
        if file.is_file() and not file.name.endswith(WEIGHT_SUFFIXES):
            target = destination / file.relative_to(pipeline_folder)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(file, target)
    return destination


# --- diffusers → original key layout ----------------------------------------------------------

def _rename(state: dict, renames: list[tuple[str, str]]) -> dict:
    """Each key with its longest matching diffusers prefix replaced by the original one."""
    ordered = sorted(renames, key=lambda pair: len(pair[0]), reverse=True)
    out = {}
    for key, value in state.items():
        for old, new in ordered:
            if key.startswith(old):
                key = new + key[len(old):]
                break
        out[key] = value
    return out


RESNET_PARTS = [("norm1.", "in_layers.0."), ("conv1.", "in_layers.2."),
                ("time_emb_proj.", "emb_layers.1."), ("norm2.", "out_layers.0."),
                ("conv2.", "out_layers.3."), ("conv_shortcut.", "skip_connection.")]


def unet_to_original(state: dict, config: dict) -> dict:
    layers = config["layers_per_block"]
    blocks = len(config["down_block_types"])
    renames = [("time_embedding.linear_1.", "time_embed.0."), ("time_embedding.linear_2.", "time_embed.2."),
               ("add_embedding.linear_1.", "label_emb.0.0."), ("add_embedding.linear_2.", "label_emb.0.2."),
               ("conv_in.", "input_blocks.0.0."), ("conv_norm_out.", "out.0."), ("conv_out.", "out.2.")]

    def resnet(old: str, new: str) -> None:
        renames.extend((old + a, new + b) for a, b in RESNET_PARTS)

    index = 1
    for block in range(blocks):
        for layer in range(layers):
            resnet(f"down_blocks.{block}.resnets.{layer}.", f"input_blocks.{index}.0.")
            renames.append((f"down_blocks.{block}.attentions.{layer}.", f"input_blocks.{index}.1."))
            index += 1
        if block < blocks - 1:
            renames.append((f"down_blocks.{block}.downsamplers.0.conv.", f"input_blocks.{index}.0.op."))
            index += 1
    resnet("mid_block.resnets.0.", "middle_block.0.")
    renames.append(("mid_block.attentions.0.", "middle_block.1."))
    resnet("mid_block.resnets.1.", "middle_block.2.")
    index = 0
    for block, kind in enumerate(config["up_block_types"]):
        for layer in range(layers + 1):
            resnet(f"up_blocks.{block}.resnets.{layer}.", f"output_blocks.{index}.0.")
            renames.append((f"up_blocks.{block}.attentions.{layer}.", f"output_blocks.{index}.1."))
            if layer == layers and block < blocks - 1:
                slot = 2 if "CrossAttn" in kind else 1
                renames.append((f"up_blocks.{block}.upsamplers.0.", f"output_blocks.{index}.{slot}."))
            index += 1
    return _rename(state, renames)


def vae_to_original(state: dict, config: dict) -> dict:
    blocks = len(config["down_block_types"])
    renames = [("encoder.conv_norm_out.", "encoder.norm_out."),
               ("decoder.conv_norm_out.", "decoder.norm_out.")]

    def resnet(old: str, new: str) -> None:
        renames.extend((old + a, new + b) for a, b in
                       [("norm1.", "norm1."), ("conv1.", "conv1."), ("norm2.", "norm2."),
                        ("conv2.", "conv2."), ("conv_shortcut.", "nin_shortcut.")])

    for part in ("encoder", "decoder"):
        for k in range(2):
            resnet(f"{part}.mid_block.resnets.{k}.", f"{part}.mid.block_{k + 1}.")
        attention = f"{part}.mid_block.attentions.0."
        renames += [(attention + a, f"{part}.mid.attn_1." + b) for a, b in
                    [("group_norm.", "norm."), ("to_q.", "q."), ("to_k.", "k."), ("to_v.", "v."),
                     ("to_out.0.", "proj_out.")]]
    for block in range(blocks):
        for layer in range(config["layers_per_block"]):
            resnet(f"encoder.down_blocks.{block}.resnets.{layer}.", f"encoder.down.{block}.block.{layer}.")
        renames.append((f"encoder.down_blocks.{block}.downsamplers.0.conv.", f"encoder.down.{block}.downsample.conv."))
        up = blocks - 1 - block  # the original numbers decoder blocks from the bottom
        for layer in range(config["layers_per_block"] + 1):
            resnet(f"decoder.up_blocks.{block}.resnets.{layer}.", f"decoder.up.{up}.block.{layer}.")
        renames.append((f"decoder.up_blocks.{block}.upsamplers.0.conv.", f"decoder.up.{up}.upsample.conv."))
    out = _rename(state, renames)
    # The original's attention projections are 1×1 convolutions.
    for key in [k for k in out if ".mid.attn_1." in k and k.endswith(".weight") and ".norm." not in k]:
        out[key] = out[key][:, :, None, None]
    return out


def _text_model_keys(state: dict) -> dict:
    """transformers' CLIP text model keys, with the ``text_model.`` level the originals have."""
    return {(k if k.startswith(("text_model.", "text_projection")) else "text_model." + k): v
            for k, v in state.items() if not k.endswith("position_ids")}


def clip_to_original(state: dict) -> dict:
    return _text_model_keys(state)


def openclip_to_original(state: dict, width: int) -> dict:
    state = _text_model_keys(state)
    out = {"token_embedding.weight": state.pop("text_model.embeddings.token_embedding.weight"),
           "positional_embedding": state.pop("text_model.embeddings.position_embedding.weight")}
    projection = state.pop("text_projection.weight", None)
    # OpenCLIP multiplies by its projection; SD 2.x checkpoints hold an unused one too.
    out["text_projection"] = torch.eye(width) if projection is None else projection.T.contiguous()
    qkv: dict[str, dict[str, torch.Tensor]] = {}
    parts = [("layer_norm1.", "ln_1."), ("layer_norm2.", "ln_2."), ("mlp.fc1.", "mlp.c_fc."),
             ("mlp.fc2.", "mlp.c_proj."), ("self_attn.out_proj.", "attn.out_proj.")]
    for key, value in state.items():
        if key.startswith("text_model.final_layer_norm."):
            out["ln_final." + key.rsplit(".", 1)[1]] = value
            continue
        layer, rest = key[len("text_model.encoder.layers."):].split(".", 1)
        prefix = f"transformer.resblocks.{layer}."
        if rest.startswith("self_attn.") and rest.split(".")[1] in ("q_proj", "k_proj", "v_proj"):
            name, kind = rest.split(".")[1:]
            qkv.setdefault(prefix + "attn.in_proj_" + kind, {})[name] = value
            continue
        for old, new in parts:
            if rest.startswith(old):
                out[prefix + new + rest[len(old):]] = value
                break
        else:
            raise KeyError(key)
    for key, pieces in qkv.items():
        out[key] = torch.cat([pieces["q_proj"], pieces["k_proj"], pieces["v_proj"]])
    return out


def _weights(folder: Path) -> dict:
    return load_file(str(next(folder.glob("*.safetensors"))))


def write_single_file(pipeline_folder: Path, file: Path) -> Path:
    """The pipeline's UNet, VAE and text encoder(s) as one checkpoint in the original layout."""
    import json

    def config(name: str) -> dict:
        return json.loads((pipeline_folder / name / "config.json").read_text())

    checkpoint = {}
    unet = unet_to_original(_weights(pipeline_folder / "unet"), config("unet"))
    checkpoint.update({"model.diffusion_model." + k: v for k, v in unet.items()})
    vae = vae_to_original(_weights(pipeline_folder / "vae"), config("vae"))
    checkpoint.update({"first_stage_model." + k: v for k, v in vae.items()})
    text = _weights(pipeline_folder / "text_encoder")
    if (pipeline_folder / "text_encoder_2").is_dir():
        te1 = clip_to_original(text)
        checkpoint.update({"conditioner.embedders.0.transformer." + k: v for k, v in te1.items()})
        te2 = openclip_to_original(_weights(pipeline_folder / "text_encoder_2"),
                                   config("text_encoder_2")["hidden_size"])
        checkpoint.update({"conditioner.embedders.1.model." + k: v for k, v in te2.items()})
    elif config("text_encoder")["hidden_size"] == SD1_WIDTH:
        checkpoint.update({"cond_stage_model.transformer." + k: v
                           for k, v in clip_to_original(text).items()})
    else:
        te = openclip_to_original(text, config("text_encoder")["hidden_size"])
        checkpoint.update({"cond_stage_model.model." + k: v for k, v in te.items()})
    file.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in checkpoint.items()}, str(file))
    return file
