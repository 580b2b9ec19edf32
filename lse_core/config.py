"""Experiment configs: the original tool's YAML keys, validated with key paths in errors."""

from __future__ import annotations

import difflib
import random
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import BadInput

ModelKind = Literal["txt2img", "img2img", "inpaint"]
ExperimentName = Literal[
    "single-inference",
    "visualize-diffusion",
    "random-walk",
    "interpolation",
    "diffevolution",
    "outpaint-walk",
]
CameraAction = Literal["right", "down", "left", "up", "backwards"]

EXPERIMENTS: tuple[str, ...] = ExperimentName.__args__  # type: ignore[attr-defined]
MODEL_KINDS: tuple[str, ...] = ModelKind.__args__  # type: ignore[attr-defined]

EMBEDDING_SUFFIXES = (".safetensors", ".pt")
DEFAULT_MODEL_IDS = {
    "txt2img": "stabilityai/stable-diffusion-2-1",
    "img2img": "stabilityai/stable-diffusion-2-1",
    "inpaint": "stabilityai/stable-diffusion-2-inpainting",
}
# Defaults that depend on the experiment (a key's schema default serves the others).
# The CLI and the TUI form both read them through ``default_value``.
EXPERIMENT_DEFAULTS: dict[str, dict[str, Any]] = {
    # A gene moves this far from its parent; a random walk's 0.02 shows almost no change.
    "diffevolution": {"step_size": 0.3},
}


class ExperimentConfig(BaseModel):
    """Every key the original Stable-Diffusion-Latent-Space-Explorer accepted, plus lse's own."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    model_identifier: ModelKind
    exp_identifier: ExperimentName
    # model
    model_id: str | None = None
    scheduler: str = "DPMSolverMultistepScheduler"
    att_slicing: bool = False
    vae_slicing: bool = False
    vae_tiling: bool = False
    enable_xformers: bool = False
    compile: bool = False
    gpu_id: int = Field(0, ge=0)
    diffusion_steps: int = Field(25, ge=1)
    guidance_scale: float = Field(7.5, ge=0)
    batch_size: int | None = Field(None, ge=1)
    # experiment
    output_path: str = "./sessions"
    gif_frame_dur: int = Field(100, ge=1)
    # prompt
    prompt: str | None = None
    load_prompt_embeds: str | None = None
    # noise
    rand_seed: int | None = Field(None, ge=0)
    height: int | None = Field(None, gt=0)
    width: int | None = Field(None, gt=0)
    images_per_prompt: int = Field(1, ge=1)
    load_latent_noise: str | None = None
    # image conditioning
    image: str | None = None
    mask: str | None = None
    strength: float = Field(0.8, gt=0, le=1)
    # random walk
    prompt_rand_walk: bool = False
    noise_rand_walk: bool = False
    walk_steps: int = Field(10, ge=1)
    step_size: float = Field(0.02, gt=0)
    walk_directions: int = Field(1, ge=1)
    # interpolation
    interpolation_steps: int = Field(5, ge=0)
    interpolation_method: Literal["slerp", "lerp"] = "slerp"
    inter_prompts: list[str] | None = None
    inter_noises: list[int | str] | None = None
    # diffevolution
    genes_per_generation: int = Field(4, ge=1, le=16)
    # outpaint walk
    translation_factor: float = Field(0.25, gt=0, lt=1)
    num_filler_frames: int = Field(8, ge=1)
    prompts: list[str] | None = None
    frames_per_prompt: list[int] | None = None
    camera_actions: list[CameraAction] | None = None
    frames_per_cam_action: list[int] | None = None
    seed_per_frame: list[int] | None = None

    @model_validator(mode="before")
    @classmethod
    def _experiment_defaults(cls, data: Any) -> Any:
        if isinstance(data, dict):
            defaults = EXPERIMENT_DEFAULTS.get(data.get("exp_identifier"), {})
            data = {**defaults, **{k: v for k, v in data.items()
                                   if v is not None or k not in defaults}}
        return data

    @field_validator("height", "width")
    @classmethod
    def _multiple_of_8(cls, value: int | None) -> int | None:
        if value is not None and value % 8:
            raise ValueError("must be a multiple of 8")
        return value

    @field_validator("frames_per_prompt", "frames_per_cam_action")
    @classmethod
    def _positive_counts(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and any(v < 1 for v in value):
            raise ValueError("every count must be ≥ 1")
        return value

    @model_validator(mode="after")
    def _required_inputs(self) -> "ExperimentConfig":
        kind, exp = self.model_identifier, self.exp_identifier
        if exp == "outpaint-walk":
            if kind != "inpaint":
                raise ValueError("outpaint-walk needs model_identifier: inpaint")
            _require(self, "image", "prompts", "frames_per_prompt", "camera_actions",
                     "frames_per_cam_action")
        elif exp == "interpolation":
            _require(self, "inter_prompts", "inter_noises")
        elif self.prompt is None and self.load_prompt_embeds is None:
            raise ValueError(f"{exp} needs 'prompt' or 'load_prompt_embeds'")
        _check_experiment_keys(self)
        if kind in ("img2img", "inpaint"):
            _require(self, "image")
        if kind == "inpaint" and exp != "outpaint-walk":
            _require(self, "mask")
        return self


def _require(cfg: ExperimentConfig, *keys: str) -> None:
    for key in keys:
        value = getattr(cfg, key)
        if value is None or value == []:
            raise ValueError(
                f"key '{key}' is required for {cfg.model_identifier} {cfg.exp_identifier}"
            )


def _check_experiment_keys(cfg: ExperimentConfig) -> None:
    if cfg.exp_identifier == "random-walk" and not (cfg.prompt_rand_walk or cfg.noise_rand_walk):
        raise ValueError("random-walk needs prompt_rand_walk or noise_rand_walk (or both) set "
                         "to true")
    if cfg.exp_identifier == "interpolation":
        prompts, noises = len(cfg.inter_prompts), len(cfg.inter_noises)
        if prompts > 1 and noises > 1 and prompts != noises:
            raise ValueError(f"inter_prompts has {prompts} items but inter_noises has {noises}; "
                             "lists longer than one must have equal length")
    if cfg.exp_identifier == "outpaint-walk":
        for items, counts in (("prompts", "frames_per_prompt"),
                              ("camera_actions", "frames_per_cam_action")):
            a, b = len(getattr(cfg, items)), len(getattr(cfg, counts))
            if a != b:
                raise ValueError(f"{items} has {a} items but {counts} has {b}")
        by_prompt, by_camera = sum(cfg.frames_per_prompt), sum(cfg.frames_per_cam_action)
        if by_prompt != by_camera:
            raise ValueError(f"frames_per_prompt covers {by_prompt} frames but "
                             f"frames_per_cam_action covers {by_camera}; they must be equal")
        if "backwards" in cfg.camera_actions and cfg.translation_factor >= 0.5:
            raise ValueError("key 'translation_factor': must be below 0.5 with the backwards "
                             "camera action, which shrinks the image by the margin on each side "
                             f"(got {cfg.translation_factor})")


KNOWN_KEYS = tuple(ExperimentConfig.model_fields)


def default_value(key: str, experiment: str) -> Any:
    """What an unset ``key`` means in ``experiment``."""
    return EXPERIMENT_DEFAULTS.get(experiment, {}).get(key, ExperimentConfig.model_fields[key].default)


def _none_strings(data: dict[str, Any]) -> dict[str, Any]:
    # The original tool wrote the string "None" for an unset value.
    return {k: (None if v == "None" else v) for k, v in data.items()}


def parse_override(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` with the value parsed as YAML."""
    if "=" not in text:
        raise BadInput(f"--set {text}: expected KEY=VALUE")
    key, raw = text.split("=", 1)
    try:
        return key.strip(), yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise BadInput(f"--set {key}: value is not valid YAML ({exc.problem})") from None


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BadInput(f"{path}: config file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"{path}: cannot read config ({exc.__class__.__name__})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise BadInput(f"{path}: YAML syntax error{where}: {problem}") from None
    if not isinstance(data, dict):
        raise BadInput(f"{path}: expected a mapping of config keys")
    return data


def build_config(data: dict[str, Any], source: str = "config") -> ExperimentConfig:
    """Validate a mapping of keys; errors name the source and the key path."""
    data = _none_strings(data)
    for key in data:
        if key not in KNOWN_KEYS:
            close = difflib.get_close_matches(str(key), KNOWN_KEYS, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise BadInput(f"{source}: unknown key '{key}'{hint}")
    try:
        return ExperimentConfig.model_validate(data)
    except ValidationError as exc:
        raise BadInput(f"{source}: {_describe(exc)}") from None


def _describe(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"])
    msg = err["msg"].removeprefix("Value error, ")
    if not loc:
        return msg
    if err["type"] == "missing":
        return f"key '{loc}' is required"
    return f"key '{loc}': {msg} (got {err.get('input')!r})"


def load_config(
    path: str | Path,
    overrides: list[str] | None = None,
    model: str | None = None,
) -> ExperimentConfig:
    """Read a YAML config, apply ``--set`` overrides and ``--model``, validate it."""
    path = Path(path)
    data = read_yaml(path)
    for text in overrides or []:
        key, value = parse_override(text)
        data[key] = value
    if model is not None:
        data["model_id"] = model
    return build_config(data, source=str(path))


def with_defaults(cfg: ExperimentConfig) -> ExperimentConfig:
    """Fill values that are drawn or derived once and then recorded in the session."""
    updates: dict[str, Any] = {}
    if cfg.model_id is None:
        updates["model_id"] = DEFAULT_MODEL_IDS[cfg.model_identifier]
    if cfg.rand_seed is None:
        updates["rand_seed"] = random.SystemRandom().randrange(2**31)
    # Absolute paths keep a stored session resumable from any working directory.
    for key in ("image", "mask", "load_prompt_embeds", "load_latent_noise"):
        value = getattr(cfg, key)
        if value is not None and Path(value).expanduser().exists():
            updates[key] = absolute_path(value)
    for key in ("inter_prompts", "inter_noises", "prompts"):
        items = getattr(cfg, key)
        if items:
            updates[key] = [_absolute_if_file(item) for item in items]
    return cfg.model_copy(update=updates)


def is_embedding_path(text: Any) -> bool:
    """A list item that names an embedding file rather than a prompt or seed."""
    return str(text).strip().endswith(EMBEDDING_SUFFIXES)


def absolute_path(text: str) -> str:
    """Stored paths are absolute, so a session resumes from any working directory."""
    return str(Path(text.strip()).expanduser().resolve())


def _absolute_if_file(item: Any) -> Any:
    # Only embedding paths: a prompt that happens to match a file name stays a prompt.
    if isinstance(item, str) and is_embedding_path(item) and Path(item).expanduser().is_file():
        return absolute_path(item)
    return item


def to_yaml(cfg: ExperimentConfig) -> str:
    """Every value, defaults included: a later lse with other defaults resumes the same run."""
    data = cfg.model_dump(exclude_none=True)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def split_prompt(text: str) -> tuple[str, str]:
    """``"positive|negative"``: the text before the first ``|`` and after it."""
    positive, _, negative = text.partition("|")
    return positive, negative
