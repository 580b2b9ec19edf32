"""Checks that need no model: the files a config names, the model folder, the output folder.

They run before torch is imported, so that a mistake costs a fraction of a second
instead of the seconds a model load takes. What can only be checked against a
loaded model (embedding shapes, the model kind) is checked after loading, still
before a session folder exists.
"""

from __future__ import annotations

import re
import struct
import tempfile
import warnings
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from .config import DEFAULT_MODEL_IDS, ExperimentConfig, config_key, ignored_keys, is_embedding_path
from .errors import BadInput, shorten, shown_path
from .sources import locate

DEVICE_PATTERN = re.compile(r"(cpu|mps|cuda(:\d{1,2})?)")


def preflight(cfg: ExperimentConfig, source: str | None = None) -> None:
    """Raise ``BadInput`` for the first problem a config has that no model is needed to see;
    ``source`` (the config file) starts the message, as it does for the config's own errors."""
    try:
        _check(cfg)
    except BadInput as exc:
        if source is None:
            raise
        raise BadInput(f"{shown_path(source)}: {exc}", key=exc.key) from None


def _check(cfg: ExperimentConfig) -> None:
    unused = set(ignored_keys(cfg.exp_identifier))
    for key in image_keys(cfg):
        check_image(getattr(cfg, key), key)
    for key, path, tensor in embedding_files(cfg):
        if config_key(key) not in unused:
            check_embedding_file(path, key, tensor)
    check_output_path(cfg.output_path)
    # Last: a hub id not in the cache asks the network (briefly).
    check_model_id(cfg.model_id or DEFAULT_MODEL_IDS[cfg.model_identifier])


def image_keys(cfg: ExperimentConfig) -> tuple[str, ...]:
    """The image keys this experiment reads."""
    if cfg.model_identifier == "txt2img":
        return ()
    if cfg.model_identifier == "inpaint" and cfg.exp_identifier != "outpaint-walk":
        return ("image", "mask")
    return ("image",)


def embedding_files(cfg: ExperimentConfig) -> list[tuple[str, str, str]]:
    """(key, path, tensor it must hold) for every embedding file the config names."""
    found = []
    if cfg.load_prompt_embeds:
        found.append(("load_prompt_embeds", cfg.load_prompt_embeds, "prompt_embed"))
    if cfg.load_latent_noise:
        found.append(("load_latent_noise", cfg.load_latent_noise, "latent_noise"))
    for key, tensor in (("inter_prompts", "prompt_embed"), ("prompts", "prompt_embed"),
                        ("inter_noises", "latent_noise")):
        for index, item in enumerate(getattr(cfg, key) or []):
            if isinstance(item, str) and is_embedding_path(item):
                found.append((f"{key}[{index}]", item.strip(), tensor))
            elif isinstance(item, str) and key == "inter_noises":
                raise BadInput(f"key '{key}[{index}]': {shorten(repr(item))} is neither a seed "
                               "nor an embedding file (.safetensors or .pt)", key=key)
    return found


def check_model_id(model_id: str) -> None:
    """The model can be loaded from here: a built-in one, a diffusers folder, a single-file
    checkpoint, or a hub id that is cached or that the hub has (asked with a short timeout)."""
    locate(model_id)


def check_device_name(device: str) -> None:
    if not DEVICE_PATTERN.fullmatch(device):
        raise BadInput(f"--device: unknown device {shorten(repr(device))} "
                       "(valid: cpu, cuda, cuda:N, mps)")


def open_image(path: str, key: str) -> Image.Image:
    """The image a config key names, fully decoded."""
    return _read_image(path, key, decode=True)


def check_image(path: str, key: str) -> None:
    """The image a config key names exists and is a well-formed image of a sane size."""
    _read_image(path, key, decode=False)


def _read_image(path: str, key: str, decode: bool) -> Image.Image | None:
    file = Path(path).expanduser()
    shown = shorten(path)
    if not file.is_file():
        raise BadInput(f"key '{key}': {shown}: file not found", key=key)
    try:
        with warnings.catch_warnings():
            # Pillow warns about sizes past its limit (lse refuses twice that, below) and
            # about odd metadata; a warning line must not come before lse's own answer.
            warnings.simplefilter("ignore")
            return _open(file, decode)
    except Image.DecompressionBombError:
        raise BadInput(f"key '{key}': {shown}: image too large (over "
                       f"{2 * Image.MAX_IMAGE_PIXELS // 10**6} megapixels)", key=key) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, struct.error) as exc:
        # Pillow's decoders report damaged files with any of these.
        raise BadInput(f"key '{key}': {shown}: not a readable image "
                       f"({exc.__class__.__name__})", key=key) from None


def _open(file: Path, decode: bool) -> Image.Image | None:
    with Image.open(file) as image:
        if not decode:
            image.verify()
            return None
        image.load()
        return image.copy()


def check_embedding_file(path: str, key: str, tensor: str) -> None:
    """The file exists; a ``.safetensors`` file holds ``tensor`` (its header is read, not
    its data; values and shapes are checked once the model is loaded)."""
    file = Path(path).expanduser()
    shown = shorten(path)
    if not file.is_file():
        raise BadInput(f"key '{key}': {shown}: embedding file not found", key=config_key(key))
    if file.suffix != ".safetensors":
        return  # .pt needs torch to read (weights only); checked when loaded
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(file), framework="numpy") as handle:
            names = set(handle.keys())
    except (SafetensorError, OSError, ValueError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        raise BadInput(f"{shown}: not a readable embedding file ({shorten(reason)})",
                       key=config_key(key)) from None
    if tensor not in names:
        raise BadInput(f"{shown}: missing tensor {tensor} "
                       f"(has {', '.join(sorted(names)) or 'nothing'})", key=config_key(key))


def check_output_path(path: str) -> None:
    """The sessions folder exists (it is made if missing) and a file can be written there."""
    folder = Path(path).expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        reason = exc.strerror or exc.__class__.__name__
        raise BadInput(f"key 'output_path': cannot write sessions to {shorten(path)} "
                       f"({reason})", key="output_path") from None
