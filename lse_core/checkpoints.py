"""Single-file checkpoints: the ``.safetensors`` files of the web UIs (SD 1.x, SD 2.x, SDXL
and their inpainting models), loaded through diffusers' single-file loader.

The loader needs the pipeline's configs. They come from, in this order:

1. a diffusers config folder beside the checkpoint, named like it without
   ``.safetensors`` (``anime.safetensors`` → ``anime/``, holding ``model_index.json``,
   each component's config and the tokenizer files: what ``save_pretrained`` writes,
   without the weights). This is the way for any checkpoint that is not one of the
   reference architectures (a distilled UNet, a different text encoder, …);
2. otherwise the configs lse ships for the checkpoint's type, which diffusers tells
   from its tensor names and shapes. An SD 2.x checkpoint does not say whether it
   predicts noise or velocity: a ``.yaml`` beside it (the web UIs' convention: the
   model's original config, ``parameterization: "v"`` for v-prediction) or the
   checkpoint's ``modelspec`` metadata decides, else it is taken as SD 2.1 768-v,
   as diffusers does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from .errors import BadInput, shorten

UNET_PREFIX = "model.diffusion_model."
# diffusers' names for the checkpoint types lse loads → lse's shipped config folders
SHIPPED = {"v1": "sd1", "inpainting": "sd1-inpaint", "inpainting_v2": "sd2-inpaint",
           "xl_base": "sdxl", "xl_inpaint": "sdxl-inpaint"}
PIPELINES = ("StableDiffusionPipeline", "StableDiffusionImg2ImgPipeline",
             "StableDiffusionInpaintPipeline", "StableDiffusionXLPipeline",
             "StableDiffusionXLImg2ImgPipeline", "StableDiffusionXLInpaintPipeline")
SUPPORTED = "lse loads SD 1.x, SD 2.x and SDXL checkpoints (and their inpainting models)"


def config_beside(path: Path) -> Path:
    """Where a checkpoint's own diffusers config folder goes: its name without the suffix."""
    return path.with_suffix("")


def _ask_for_configs(path: Path) -> str:
    return ("put the model's diffusers configs (what save_pretrained writes, without the "
            f"weights) in {shorten(str(config_beside(path)), 120)}/")


def check_checkpoint(path: Path, model_id: str) -> None:
    """A readable ``.safetensors`` file holding a Stable Diffusion UNet (its header is
    read, not its weights), and a well-formed config folder beside it if there is one."""
    shown = shorten(model_id)
    if not path.is_file():
        raise BadInput(f"key 'model_id': checkpoint file {shown} does not exist", key="model_id")
    if path.suffix.lower() != ".safetensors":
        raise BadInput(f"key 'model_id': {shown}: lse loads .safetensors checkpoints only "
                       f"({path.suffix} files are pickles, which can run code when loaded)",
                       key="model_id")
    names = tensor_names(path, model_id)
    if not any(name.startswith(UNET_PREFIX) for name in names):
        raise BadInput(f"key 'model_id': {shown} is not a Stable Diffusion checkpoint "
                       f"(no {UNET_PREFIX}* tensors)", key="model_id")
    folder = config_beside(path)
    if folder.is_dir() and not (folder / "model_index.json").is_file():
        raise BadInput(f"key 'model_id': {shorten(str(folder))}/ beside the checkpoint is not a "
                       "diffusers config folder (no model_index.json)", key="model_id")


def tensor_names(path: Path, model_id: str) -> list[str]:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="numpy") as handle:
            return list(handle.keys())
    except (SafetensorError, OSError, ValueError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        raise BadInput(f"key 'model_id': {shorten(model_id)}: not a readable .safetensors "
                       f"checkpoint ({shorten(reason)})", key="model_id") from None


def load_checkpoint(path: Path, model_id: str, dtype: Any, notify: Callable[[str], None]) -> Any:
    """The diffusers pipeline of a single-file checkpoint; no network is used."""
    import diffusers
    from diffusers.loaders.single_file_utils import SingleFileComponentError

    folder, note = _configs_for(path, model_id)
    notify(note)
    class_name = _pipeline_class(folder)
    try:
        return getattr(diffusers, class_name).from_single_file(
            str(path), config=str(folder), dtype=dtype, local_files_only=True)
    # diffusers reports tensors missing (KeyError, its own error) or of other shapes
    # (ValueError, RuntimeError) in these ways
    except (SingleFileComponentError, KeyError, ValueError, RuntimeError, OSError) as exc:
        raise BadInput(f"key 'model_id': {shorten(model_id)} does not fit the configs in "
                       f"{shorten(str(folder), 120)} ({_first_sentence(exc)}); "
                       f"{_ask_for_configs(path)}", key="model_id") from None


def _configs_for(path: Path, model_id: str) -> tuple[Path, str]:
    """The config folder to load ``path`` with, and one line saying which and why."""
    own = config_beside(path)
    if (own / "model_index.json").is_file():
        return own, f"{path.name}: configs from {own}"
    from .tiny import cache_root

    name, why = _shipped_type(path, model_id)
    from .checkpoint_configs import TYPES, config_folder

    folder = config_folder(name, cache_root())
    return folder, (f"{path.name}: an {TYPES[name].description} checkpoint{why}; lse's configs "
                    f"for it are in {folder} (a copy in {own}/ is used instead)")


def _shipped_type(path: Path, model_id: str) -> tuple[str, str]:
    from diffusers.loaders.single_file_utils import CHECKPOINT_KEY_NAMES, infer_diffusers_model_type

    shapes, metadata = _header(path)
    found = infer_diffusers_model_type(shapes)
    shown = shorten(model_id)
    if found == "v2":
        return _sd2_type(path, metadata)
    # diffusers answers "v1" for anything it does not recognise
    if found == "v1" and CHECKPOINT_KEY_NAMES["v1"] not in shapes:
        raise BadInput(f"key 'model_id': {shown}: its tensors fit none of the checkpoint types "
                       "lse ships configs for (full-size SD 1.x, SD 2.x, SDXL and their inpainting "
                       f"models); {_ask_for_configs(path)}", key="model_id")
    if found not in SHIPPED:
        raise BadInput(f"key 'model_id': {shown} is a checkpoint of another kind (diffusers "
                       f"calls it {found!r}); {SUPPORTED}", key="model_id")
    return SHIPPED[found], ""


def _sd2_type(path: Path, metadata: dict[str, str]) -> tuple[str, str]:
    """v-prediction (768) or ε (512 base): the weights cannot tell, so something else must."""
    original = path.with_suffix(".yaml")
    if original.is_file():
        v = _parameterization(original) == "v"
        return ("sd2-v" if v else "sd2-base"), f" ({original.name} says so)"
    architecture = metadata.get("modelspec.architecture", "")
    prediction = metadata.get("modelspec.prediction_type", "")
    if prediction in ("v", "v_prediction") or architecture.endswith("-v"):
        return "sd2-v", " (its metadata says so)"
    if prediction in ("epsilon", "eps") or architecture == "stable-diffusion-v2-512":
        return "sd2-base", " (its metadata says so)"
    return "sd2-v", (f" (assumed, as diffusers does; for an ε model put its original config "
                     f"in {original.name})")


def _parameterization(original: Path) -> str:
    import yaml

    try:
        config = yaml.safe_load(original.read_text())
        return str(config["model"]["params"].get("parameterization", "eps"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError, KeyError, TypeError, AttributeError):
        raise BadInput(f"key 'model_id': {shorten(str(original))}: not a readable original "
                       "config (model: params: parameterization)", key="model_id") from None


class _Shape:
    def __init__(self, shape: list[int]) -> None:
        self.shape = tuple(shape)


def _header(path: Path) -> tuple[dict[str, _Shape], dict[str, str]]:
    """Tensor shapes and metadata of a checkpoint, without reading its weights: diffusers'
    type detection only looks at names and shapes."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        shapes = {name: _Shape(handle.get_slice(name).get_shape()) for name in handle.keys()}
        return shapes, handle.metadata() or {}


def _pipeline_class(folder: Path) -> str:
    import json

    try:
        name = json.loads((folder / "model_index.json").read_text()).get("_class_name")
    except (OSError, ValueError, AttributeError):
        name = None
    if name not in PIPELINES:
        raise BadInput(f"{shorten(str(folder))}/model_index.json: pipeline {shorten(repr(name))} "
                       f"is not a Stable Diffusion one ({', '.join(PIPELINES)})")
    return name


def _first_sentence(exc: Exception) -> str:
    text = " ".join(str(exc).split()) or exc.__class__.__name__
    return shorten(text.split(". ")[0], 160)
