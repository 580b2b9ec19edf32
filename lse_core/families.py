"""Model families (SD 1.x, SD 2.x, SDXL), told apart by the model's own configs, never its name.

A family fixes what a prompt embedding is (its width, whether a pooled embedding
comes with it) and how the UNet is conditioned. The rules read what diffusers
and transformers save: the pipeline's ``model_index.json`` and the UNet's and
text encoders' configs, so a renamed or fine-tuned model is recognised alike.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from .errors import BadInput, shorten


@dataclass(frozen=True)
class Family:
    key: str  # what embedding files record
    label: str  # what people call it
    pooled: bool  # a pooled text embedding conditions the UNet (SDXL)


SD1 = Family("sd1", "SD 1.x", pooled=False)
SD2 = Family("sd2", "SD 2.x", pooled=False)
SDXL = Family("sdxl", "SDXL", pooled=True)
FAMILIES = {family.key: family for family in (SD1, SD2, SDXL)}
SUPPORTED = "lse supports SD 1.x, SD 2.x (ε and v-prediction) and SDXL"
# Text widths of the CLIP encoders the SD 1.x and SD 2.x UNets read.
SD_TEXT_WIDTHS = {768: SD1, 1024: SD2}
# The pipeline classes whose folders lse drives with its own engine.
KNOWN_PIPELINES = {
    "StableDiffusionPipeline", "StableDiffusionImg2ImgPipeline", "StableDiffusionInpaintPipeline",
    "StableDiffusionXLPipeline", "StableDiffusionXLImg2ImgPipeline",
    "StableDiffusionXLInpaintPipeline",
}
CONFIGURED = ("unet", "text_encoder", "text_encoder_2")


@dataclass
class Anatomy:
    """What the family rules read: the pipeline's class and settings, each component's class
    (None when absent) and the configs of the UNet and the text encoders."""

    pipeline: str | None
    settings: Mapping[str, Any]
    classes: Mapping[str, str | None]
    configs: Mapping[str, Mapping[str, Any]]

    @classmethod
    def of_folder(cls, folder: Path) -> Anatomy | None:
        """From a diffusers folder's JSON files, before any weight is read (None when they
        cannot be read: the loader then reports the folder's problem)."""
        try:
            index = json.loads((folder / "model_index.json").read_text())
            configs = {name: json.loads((folder / name / "config.json").read_text())
                       for name in CONFIGURED if (folder / name / "config.json").is_file()}
        except (OSError, ValueError):
            return None
        if not isinstance(index, dict) or not all(isinstance(c, dict) for c in configs.values()):
            return None
        classes = {name: entry[1] for name, entry in index.items()
                   if not name.startswith("_") and isinstance(entry, list) and len(entry) == 2}
        return cls(index.get("_class_name"), index, classes, configs)

    @classmethod
    def of_pipeline(cls, pipe: Any) -> Anatomy:
        """From a loaded diffusers pipeline (any source: folder, hub, single file)."""
        classes = {name: type(part).__name__ if part is not None else None
                   for name, part in pipe.components.items()}
        configs = {}
        for name in CONFIGURED:
            part = getattr(pipe, name, None)
            if part is not None:
                config = part.config
                configs[name] = dict(config.to_dict() if hasattr(config, "to_dict") else config)
        # from_pretrained builds the class model_index.json names; its config omits the name.
        return cls(type(pipe).__name__, dict(pipe.config), classes, configs)


def detect_family(anatomy: Anatomy, model_id: str) -> Family:
    """The family of a model, or one line (BadInput) saying what it looks like instead."""
    found = classify(anatomy)
    if isinstance(found, Family):
        return found
    raise BadInput(f"key 'model_id': {shorten(model_id)} looks like {found}; {SUPPORTED}",
                   key="model_id")


def classify(anatomy: Anatomy) -> Family | str:
    """The model's family, or a phrase saying what the model looks like instead (for
    listings that show every model without stopping at the first unsupported one)."""
    classes, configs = anatomy.classes, anatomy.configs
    name = shorten(str(anatomy.pipeline or "an unnamed pipeline"), 60)  # from a file: escaped
    if classes.get("transformer"):
        kind = "SD3" if classes.get("text_encoder_3") else "a diffusion transformer"
        return f"{kind} ({name}: a transformer instead of a UNet)"
    if classes.get("prior") or classes.get("movq"):
        return f"Kandinsky ({name}: a prior or MoVQ decoder)"
    unet = configs.get("unet")
    if not classes.get("unet") or unet is None:
        return f"{name} without a UNet"
    if anatomy.pipeline not in KNOWN_PIPELINES:
        return f"a model for {name} (a pipeline lse does not drive)"
    channels = unet.get("in_channels")
    if channels not in (4, 9):
        return (f"a model whose UNet takes {channels} input channels (lse drives 4, or 9 "
                "for inpainting)")
    extra = unet.get("addition_embed_type")
    if extra == "text_time":
        return _sdxl(anatomy, unet)
    if extra is not None:
        return f"a model whose UNet is conditioned on {shorten(repr(extra), 30)} (Kandinsky-like)"
    return _sd(configs.get("text_encoder"), unet)


def _reads_width(unet: Mapping[str, Any]) -> Any:
    """The text width the UNet takes in (a ``text_proj`` UNet projects it down itself)."""
    if unet.get("encoder_hid_dim_type") == "text_proj":
        return unet.get("encoder_hid_dim")
    return unet.get("cross_attention_dim")


def _sd(text: Mapping[str, Any] | None, unet: Mapping[str, Any]) -> Family | str:
    if text is None:
        return "Stable Diffusion without a text encoder"
    width = text.get("hidden_size")
    if _reads_width(unet) != width:
        return (f"Stable Diffusion whose UNet reads text {_reads_width(unet)} wide while its "
                f"text encoder gives {width}")
    if width not in SD_TEXT_WIDTHS:
        return (f"Stable Diffusion with a text width of {width} (SD 1.x reads 768, "
                "SD 2.x 1024)")
    return SD_TEXT_WIDTHS[width]


def _sdxl(anatomy: Anatomy, unet: Mapping[str, Any]) -> Family | str:
    second = anatomy.configs.get("text_encoder_2")
    if second is None or not str(anatomy.classes.get("text_encoder_2")).endswith("WithProjection"):
        return "SDXL without a second text encoder with projection (the pooled embedding)"
    widths = [c.get("hidden_size") for c in (anatomy.configs.get("text_encoder"), second) if c]
    if _reads_width(unet) != sum(widths):
        return (f"SDXL whose UNet reads text {_reads_width(unet)} wide while its text encoders "
                f"give {' + '.join(map(str, widths))}")
    size_values = 5 if anatomy.settings.get("requires_aesthetics_score") else 6
    wanted = unet.get("addition_time_embed_dim", 0) * size_values + second.get("projection_dim", 0)
    if unet.get("projection_class_embeddings_input_dim") != wanted:
        other = "false" if size_values == 5 else "true"
        return (f"SDXL whose UNet does not read {size_values} size/crop values (its "
                f"model_index.json may need requires_aesthetics_score: {other})")
    return SDXL


def family_of_file(key: str | None, width: int) -> Family | None:
    """The family an embedding file was made by: its recorded family, else (files from before
    families were recorded, and the original tool's ``.pt``) its text width."""
    if key is not None:
        return FAMILIES.get(key)
    return SD_TEXT_WIDTHS.get(width)
