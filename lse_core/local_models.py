"""The models on this machine: the built-in ones and the diffusers pipelines in the local
Hugging Face hub cache, with family, kinds and size on disk (`lse models`), and
`lse models pull`, which fetches a hub model into that cache."""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

from .sources import TINY_MODELS, missing_parts

KINDS_BY_UNET_CHANNELS = {4: ("txt2img", "img2img"), 9: ("inpaint",)}


@dataclass(frozen=True)
class LocalModel:
    model_id: str
    family: str  # SD 1.x, SD 2.x, SDXL or unknown, read from the model's configs
    kinds: tuple[str, ...]
    size: int  # bytes on disk
    where: str  # "built in" or "hub cache"
    path: str | None
    missing: tuple[str, ...] = ()  # what a cut-short download left out

    @property
    def state(self) -> str:
        if self.missing:
            return "incomplete"
        return "ready" if self.path else "built on first use"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "state": self.state}


def list_models() -> list[LocalModel]:
    """Built-in models first, then the hub cache's pipelines by id."""
    return [*_builtin(), *sorted(_in_hub_cache(), key=lambda m: m.model_id.lower())]


def local_model_ids() -> list[str]:
    """Ids the TUI offers as completions: models that load from here without a download."""
    return [m.model_id for m in list_models() if not m.missing]


def _builtin() -> list[LocalModel]:
    from .tiny import tiny_built, tiny_path

    rows = []
    for name in TINY_MODELS:
        trained = name == "tiny"
        built = [tiny_path(inpaint, trained) for inpaint in (False, True)
                 if tiny_built(inpaint, trained)]
        # tiny has SD 2.x's interface shapes (see lse_core/tiny): 1024-wide text, 4 and 9 channels
        rows.append(LocalModel(name, "SD 2.x", ("txt2img", "img2img", "inpaint"),
                               sum(_folder_size(f) for f in built), "built in",
                               str(built[0].parent) if built else None))
    return rows


def _in_hub_cache() -> list[LocalModel]:
    from huggingface_hub import constants, scan_cache_dir
    from huggingface_hub.errors import CacheNotFound

    try:
        # Named here: scan_cache_dir's own default is the folder known when it was imported.
        cache = scan_cache_dir(constants.HF_HUB_CACHE)
    except CacheNotFound:
        return []
    rows = []
    for repo in cache.repos:
        if repo.repo_type != "model" or not repo.revisions:
            continue
        revision = max(repo.revisions, key=lambda r: ("main" in r.refs, r.last_modified))
        snapshot = Path(revision.snapshot_path)
        if not (snapshot / "model_index.json").is_file():
            continue  # not a diffusers pipeline (a language model, an embedding, …)
        family, kinds = describe_folder(snapshot)
        rows.append(LocalModel(repo.repo_id, family, kinds, repo.size_on_disk, "hub cache",
                               str(snapshot), tuple(missing_parts(snapshot))))
    return rows


def describe_folder(folder: Path) -> tuple[str, tuple[str, ...]]:
    """Family and kinds of a diffusers pipeline folder, read from its configs (never its name),
    by the rules that decide whether lse loads it."""
    from .families import Anatomy, Family, classify

    anatomy = Anatomy.of_folder(folder)
    if anatomy is None:
        return "unknown", ()
    found = classify(anatomy)
    unet = anatomy.configs.get("unet", {})
    return (found.label if isinstance(found, Family) else "unknown",
            KINDS_BY_UNET_CHANNELS.get(unet.get("in_channels"), ()))


def _folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def human_size(size: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


def partial_downloads(model_id: str) -> set[Path]:
    """The files huggingface_hub is writing for a hub model (or left behind when stopped)."""
    from huggingface_hub import constants
    from huggingface_hub.file_download import repo_folder_name
    from huggingface_hub.utils import HFValidationError

    from .sources import hub_repo

    try:
        folder = repo_folder_name(repo_id=hub_repo(model_id)[0], repo_type="model")
    except HFValidationError:
        return set()  # not a hub id: pull says so
    return set((Path(constants.HF_HUB_CACHE) / folder / "blobs").glob("*.incomplete"))


def pull(model_id: str, say: Callable[[str], None] = print) -> Path:
    """Download ``model_id`` (its mirror if withdrawn) into the hub cache with a progress
    bar and return its folder; a cut download resumes where it stopped. ``BadInput`` for
    an id that cannot be fetched from here."""
    from huggingface_hub import constants
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    from .errors import BadInput, shorten
    from .sources import cached_snapshot, download, hub_repo, probe_hub

    try:
        validate_repo_id(model_id)
    except HFValidationError:
        raise BadInput(f"{shorten(model_id)} is not a Hugging Face hub id (org/name)") from None
    repo, note = hub_repo(model_id)
    if note:
        say(note)
    if constants.HF_HUB_OFFLINE:
        folder = cached_snapshot(repo)
        if folder is not None and not missing_parts(folder):
            return folder
        raise BadInput(f"{repo}: HF_HUB_OFFLINE=1 forbids downloading; unset it to pull")
    failure = probe_hub(repo)
    if failure is not None:
        raise BadInput(f"{repo}: {failure}")
    from huggingface_hub.utils import enable_progress_bars

    from .models import quiet_libraries

    quiet_libraries()
    if sys.stderr.isatty():  # the download's bar on a terminal; piped, only lse's lines
        enable_progress_bars()
    return download(repo)
