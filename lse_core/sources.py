"""Where a model's weights come from: a built-in model, a diffusers folder, a single-file
checkpoint, or a Hugging Face hub id (its live mirror, the local hub cache, a download).

``locate`` answers before torch is imported: a hub id that is neither cached nor
reachable fails in seconds, with one line saying what to do, instead of the minute
diffusers spends retrying. ``load_pipeline`` then builds the diffusers pipeline whose
components the engine drives.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal

from .errors import BadInput, shorten

TINY_MODELS = ("tiny", "tiny-random")
# The guidance at which the trained tiny draws its captions' colours from 4 DPM++ steps (the
# configs' scheduler) and from 10 with every scheduler; at the configs' 7.5 it needs about 25
# (README, "Colours and guidance"; `python -m lse_core.tiny.evaluate --table --guidance G`).
# Here, not in lse_core.tiny, because the TUI reads it at once and lse_core.tiny imports torch.
TINY_GUIDANCE = 2.0

# Stability AI withdrew these repositories from the hub in November 2025; the same
# weights live on under sd2-community/. The original tool's configs name the old ids.
WITHDRAWN = {
    f"stabilityai/{name}": f"sd2-community/{name}"
    for name in ("stable-diffusion-2-1", "stable-diffusion-2-1-base", "stable-diffusion-2",
                 "stable-diffusion-2-base", "stable-diffusion-2-inpainting")
}
# The components lse loads; a pipeline's others (safety checker, feature extractor)
# are neither downloaded nor loaded.
USED_COMPONENTS = ("unet", "vae", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2",
                   "scheduler")
UNUSED_COMPONENTS = {"safety_checker": None, "feature_extractor": None, "image_encoder": None}
# How long the hub may take to answer whether a model exists before lse says it cannot
# be reached (a black-holed network never answers at all).
PROBE_SECONDS = 4.0
WHAT_TO_DO = ("run `lse models pull {repo}` where the hub is reachable (HF_ENDPOINT=URL names "
              "a hub mirror), or give a local diffusers folder or .safetensors file; "
              "HF_HUB_OFFLINE=1 uses only models already in the local cache")

SourceKind = Literal["builtin", "folder", "file", "hub"]


@dataclass(frozen=True)
class ModelSource:
    """A model_id, resolved: what kind of source it is and where its files are."""

    model_id: str
    kind: SourceKind
    # builtin: the name; folder/file: the path; hub: the repo to load (its mirror if withdrawn)
    location: str
    # hub: the complete snapshot in the local cache, or None when it must be downloaded
    folder: Path | None = None
    # one line for the user when lse loads something other than what was named
    note: str | None = None


def locate(model_id: str) -> ModelSource:
    """Resolve ``model_id`` without torch; ``BadInput`` when it cannot be loaded from here."""
    if model_id in TINY_MODELS:
        return ModelSource(model_id, "builtin", model_id)
    path = Path(model_id).expanduser()
    shown = shorten(model_id)
    if path.is_dir():
        if not (path / "model_index.json").is_file():
            raise BadInput(f"key 'model_id': {shown} is not a diffusers model folder "
                           "(no model_index.json)", key="model_id")
        return ModelSource(model_id, "folder", str(path))
    if path.suffix.lower() in (".safetensors", ".ckpt", ".pt", ".bin", ".pth"):
        from .checkpoints import check_checkpoint

        check_checkpoint(path, model_id)
        return ModelSource(model_id, "file", str(path))
    if path.exists():
        raise BadInput(f"key 'model_id': {shown} is neither a diffusers model folder nor a "
                       ".safetensors checkpoint", key="model_id")
    if model_id.startswith((".", "/", "~")) or model_id.count("/") != 1:
        raise BadInput(f"key 'model_id': model folder {shown} does not exist", key="model_id")
    return _locate_on_hub(model_id)


def hub_repo(model_id: str) -> tuple[str, str | None]:
    """The repo to fetch for a hub id, and the line saying so when it is a mirror."""
    mirror = WITHDRAWN.get(model_id.lower())
    if mirror is None:
        return model_id, None
    return mirror, (f"{model_id} was withdrawn from the Hugging Face hub; "
                    f"using its mirror {mirror}")


def _locate_on_hub(model_id: str) -> ModelSource:
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(model_id)
    except HFValidationError:
        raise BadInput(f"key 'model_id': {shorten(model_id)} is neither a local folder or "
                       "file nor a Hugging Face hub id (org/name)", key="model_id") from None
    repo, note = hub_repo(model_id)
    # A copy of the withdrawn repository downloaded before it went is as good as the mirror.
    candidates = [model_id, repo] if repo != model_id else [repo]
    partial = None
    for candidate in candidates:
        folder = cached_snapshot(candidate)
        if folder is None:
            continue
        if not missing_parts(folder):
            return ModelSource(model_id, "hub", candidate, folder,
                               note if candidate != model_id else None)
        partial = partial or candidate
    named = repo if repo == model_id else f"{repo} (the mirror of the withdrawn {model_id})"
    problem = _hub_problem(repo, named, partial)
    if problem is not None:
        raise BadInput(f"key 'model_id': {problem}", key="model_id")
    return ModelSource(model_id, "hub", repo, None, note)


def cached_snapshot(repo: str) -> Path | None:
    """The local hub cache's snapshot of ``repo`` at ``main``, complete or not."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo, "model_index.json")
    return Path(found).parent if isinstance(found, str) else None


def missing_parts(folder: Path) -> list[str]:
    """What a diffusers pipeline folder still lacks of the parts lse loads.

    A download cut short leaves some files out. huggingface_hub and diffusers judge
    completeness against the hub's file listing, which a cache copied from another
    machine or filled by another tool may not hold; this reads only the folder."""
    try:
        index = json.loads((folder / "model_index.json").read_text())
    except (OSError, ValueError):
        return ["model_index.json"]
    missing = []
    for name in USED_COMPONENTS:
        spec = index.get(name)
        if not (isinstance(spec, list) and spec and spec[0]):
            continue
        part = folder / name
        if not part.is_dir():
            missing.append(f"{name}/")
        else:
            missing += [f"{name}/{item}" for item in _missing_files(part)]
    return missing


def _missing_files(part: Path) -> list[str]:
    names = {entry.name for entry in part.iterdir()}
    if "config.json" in names:  # a model: its weights, every shard an index names
        weights = [n for n in names if n.endswith((".safetensors", ".bin"))]
        if not weights:
            return ["weights"]
        missing = []
        for index in (n for n in names if n.endswith(".index.json") or ".index." in n):
            try:
                shards = set(json.loads((part / index).read_text())["weight_map"].values())
            except (OSError, ValueError, KeyError, TypeError, AttributeError):
                missing.append(index)
                continue
            missing += sorted(shards - names)
        return missing
    if "tokenizer_config.json" in names:
        if "tokenizer.json" in names or {"vocab.json", "merges.txt"} <= names:
            return []
        return ["tokenizer.json"]
    return [] if any(n.endswith(".json") for n in names) else ["config"]


_REACHED: set[str] = set()


def _hub_problem(repo: str, named: str, partial: str | None) -> str | None:
    """Why ``repo`` cannot be fetched from the hub now, or None when it can."""
    from huggingface_hub import constants

    if repo in _REACHED:
        return None
    what_to_do = WHAT_TO_DO.format(repo=repo)
    cached = (f"{partial} is only partly in the local Hugging Face cache (a download cut short?)"
              if partial else f"{named} is not in the local Hugging Face cache")
    if constants.HF_HUB_OFFLINE:
        return (f"{cached} and HF_HUB_OFFLINE=1 forbids downloading it: unset HF_HUB_OFFLINE, "
                f"or run `lse models pull {repo}` where the hub is reachable and copy that "
                "Hugging Face cache here, or give a local diffusers folder or .safetensors file")
    failure = probe_hub(repo)
    if failure is None:
        _REACHED.add(repo)
        return None
    return f"{cached}, and {failure}; {what_to_do}"


def probe_hub(repo: str, seconds: float = PROBE_SECONDS) -> str | None:
    """Ask the hub whether ``repo`` exists; a reason when it cannot be fetched, else None.

    The question runs in a thread that is abandoned after ``seconds``: name resolution
    and a silent network are outside httpx's timeouts."""
    from huggingface_hub import HfApi, constants
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError

    answer: list[BaseException | None] = []

    def ask() -> None:
        try:
            HfApi().model_info(repo, timeout=seconds)
            answer.append(None)
        except BaseException as exc:  # reported to the caller, never raised in this thread
            answer.append(exc)

    thread = threading.Thread(target=ask, name="lse-hub-probe", daemon=True)
    thread.start()
    thread.join(seconds)
    endpoint = constants.ENDPOINT
    if not answer:
        return f"the Hugging Face hub at {endpoint} did not answer within {seconds:g} s"
    error = answer[0]
    if error is None:
        return None
    if isinstance(error, GatedRepoError):
        return (f"{repo} is gated on the hub: accept its licence on its page and log in "
                "with `hf auth login`")
    if isinstance(error, RepositoryNotFoundError):
        return (f"the hub at {endpoint} has no model {repo} (or it is private: "
                "`hf auth login`)")
    if isinstance(error, HfHubHTTPError):
        status = error.response.status_code if error.response is not None else "?"
        return f"the hub at {endpoint} answered HTTP {status}"
    return f"the Hugging Face hub at {endpoint} cannot be reached ({error.__class__.__name__})"


def download(repo: str) -> Path:
    """Fetch the files of ``repo`` that lse loads into the local hub cache (resumes a cut
    download); diffusers chooses them: the fp16 weights where the repo has them (half the
    download, and what a GPU runs), else the full ones."""
    from diffusers import DiffusionPipeline
    from huggingface_hub import HfApi

    # diffusers refuses variant="fp16" for a repository that has no fp16 file at all.
    files = HfApi().list_repo_files(repo)
    variant = "fp16" if any(".fp16." in name for name in files) else None
    return Path(DiffusionPipeline.download(repo, variant=variant, **UNUSED_COMPONENTS))


def load_pipeline(source: ModelSource, dtype: Any, inpaint: bool,
                  notify: Callable[[str], None]) -> Any:
    """The diffusers pipeline of a located source (downloading a hub model first)."""
    if source.kind == "file":
        from .checkpoints import load_checkpoint

        return load_checkpoint(Path(source.location), source.model_id, dtype, notify)
    folder = _folder(source, inpaint, notify)
    from .families import Anatomy, detect_family

    anatomy = Anatomy.of_folder(folder)
    if anatomy is not None:  # an unsupported model is refused before its weights load
        detect_family(anatomy, source.model_id)
    from diffusers import DiffusionPipeline

    try:
        return DiffusionPipeline.from_pretrained(folder, dtype=dtype, variant=_variant(folder, dtype),
                                                 **UNUSED_COMPONENTS)
    except (OSError, ValueError) as exc:
        raise BadInput(_load_failure(source, exc), key="model_id") from None


def _folder(source: ModelSource, inpaint: bool, notify: Callable[[str], None]) -> Path:
    if source.kind == "builtin":
        from .tiny import tiny_path

        return tiny_path(inpaint, trained=source.model_id == "tiny")
    if source.kind == "folder":
        return Path(source.location)
    if source.folder is not None:  # a hub model complete in the local cache
        return source.folder
    notify(f"downloading {source.location} from the Hugging Face hub (once; "
           f"`lse models pull {source.location}` shows its progress)…")
    from huggingface_hub.utils import disable_progress_bars

    disable_progress_bars()  # the run reports in its own lines (the TUI owns the terminal)
    try:
        return download(source.location)
    except (OSError, ValueError) as exc:
        raise BadInput(_load_failure(source, exc), key="model_id") from None


def _variant(folder: Path, dtype: Any) -> str | None:
    """The weights variant to load: fp16 where the folder holds fp16 weight files (what
    `lse models pull` fetches), unless every model part also has full-precision weights
    and fp16 is not wanted."""
    import torch

    variants = list(folder.glob("*/*.fp16.safetensors")) + list(folder.glob("*/*.fp16.bin"))
    if not variants:
        return None
    if dtype == torch.float16:
        return "fp16"
    for weights in variants:
        full = [p for p in weights.parent.iterdir()
                if p.suffix in (".safetensors", ".bin") and ".fp16" not in p.name]
        if not full:
            return "fp16"
    return None


def _load_failure(source: ModelSource, exc: Exception) -> str:
    # diffusers' messages can run to paragraphs and point at a stack trace lse does not show.
    text = " ".join(str(exc).split()) or exc.__class__.__name__
    sentences = [s for s in text.split(". ") if "stacktrace" not in s and "stack trace" not in s]
    first = shorten(". ".join(sentences).rstrip(". "), 160)
    shown = shorten(source.model_id)
    if source.kind == "hub":
        return (f"key 'model_id': cannot load {shown} from the Hugging Face hub ({first}); "
                + WHAT_TO_DO.format(repo=source.location))
    return f"key 'model_id': cannot load the model folder {shown} ({first})"
