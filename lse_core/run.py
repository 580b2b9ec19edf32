"""Running an experiment: an async iterator of events over a worker thread.

config → experiment plan → engine (batched) → frames → session → events.
The heavy work runs in one thread so the caller's event loop stays free; the
TUI consumes ``events()`` in a worker and the CLI with ``asyncio.run``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator, Callable

import torch

from . import __version__
from .config import ExperimentConfig, ignored_keys, with_defaults
from .driver import PlanDriver
from .engine import Engine, steps_run
from .errors import BadInput, Cancelled, RenderFault, one_line
from .events import (
    FINAL_EVENTS,
    Event,
    Failed,
    Finished,
    Interrupted,
    Loaded,
    Notice,
    Started,
)
from .experiments import EXPERIMENTS
from .models import (
    DTYPES,
    LoadedModel,
    apply_memory_options,
    builds_first,
    compile_cache,
    compile_model,
    compile_wanted,
    load_model,
    pick_device,
    pick_dtype,
    torch_threads,
)
from .distributed import Failure, Group, RankFailed, failure_of
from .media import media_entries
from .preflight import DEVICE_PATTERN, preflight
from .session import Session, stored_count

CPU_BATCH = 4
# Rough UNet+VAE activation memory of one 768x768 frame with CFG in fp16; only
# used to pick a default batch size, which is then stored in the session.
GPU_BYTES_PER_FRAME_768 = 1.2e9
MAX_BATCH = 16


@dataclass
class RunOptions:
    device: str | None = None
    dtype: str | None = None
    group: Group | None = None  # the ranks of a torchrun launch (None: this process alone)
    # Live step previews where the config's ``live_preview`` allows (the TUI asks for
    # them; headless runs never do, and then do no preview work at all).
    live_preview: bool = False
    # Pad every batch of a request to one size; None: when compiled (a compiled model then
    # never recompiles mid-journey). A session stores it and a resume pads the same way.
    fixed_shapes: bool | None = None


def default_batch_size(model: LoadedModel, height: int, width: int) -> int:
    if model.device.type != "cuda":
        return CPU_BATCH
    free, _ = torch.cuda.mem_get_info(model.device)
    per_frame = GPU_BYTES_PER_FRAME_768 * (height * width) / (768 * 768)
    return max(1, min(MAX_BATCH, int(free * 0.7 / per_frame)))


_ENGINES: dict[int, Engine] = {}


def engine_for(model: LoadedModel) -> Engine:
    """One engine per loaded model, reused across runs (the TUI runs many)."""
    if id(model) not in _ENGINES:
        _ENGINES[id(model)] = Engine(model)
    return _ENGINES[id(model)]


class ExperimentRun:
    """One run of one experiment, new or resumed."""

    def __init__(self, cfg: ExperimentConfig | None = None, options: RunOptions | None = None,
                 resume: str | Path | None = None) -> None:
        if (cfg is None) == (resume is None):
            raise ValueError("give either a config or a session to resume")
        self.cfg = cfg
        self.resume_dir = Path(resume) if resume is not None else None
        self.options = options or RunOptions()
        self.session: Session | None = None
        self._cancel = threading.Event()
        self._choices: queue.Queue[Any] = queue.Queue()
        # Until the run starts writing, a resumed session stays as it was, even when it
        # is refused (its stored state, a finished one's "done" included, is kept).
        self._started = False
        self._removed: list[str] = []  # damaged files a resume removed, to be made again
        # Process-wide settings the run changes (thread count, compile cache), put back when
        # it ends: the TUI runs many experiments in one process.
        self._restore = contextlib.ExitStack()

    def cancel(self) -> None:
        """Stop within one denoising step; finished frames stay in the session."""
        self._cancel.set()

    def choose(self, action: Any) -> None:
        """Answer a ``WaitingForChoice`` (diffevolution)."""
        self._choices.put(action)

    async def events(self) -> AsyncIterator[Event]:
        loop = asyncio.get_running_loop()
        inbox: asyncio.Queue[Event] = asyncio.Queue()

        def emit(event: Event) -> None:
            loop.call_soon_threadsafe(inbox.put_nowait, event)

        worker = threading.Thread(target=self._work, args=(emit,), name="lse-run", daemon=True)
        worker.start()
        try:
            while True:
                event = await inbox.get()
                yield event
                if isinstance(event, FINAL_EVENTS):
                    break
        finally:
            self._cancel.set()
            await asyncio.to_thread(worker.join)

    # worker thread -----------------------------------------------------------
    def _work(self, emit: Callable[[Event], None]) -> None:
        try:
            self._run(emit)
        except BadInput as exc:
            if self.session is not None and self._started:
                self.session.update(state="failed", error=str(exc))
            emit(Failed(str(exc), bad_input=True,
                        session_dir=self.session.path if self.session else None, key=exc.key))
        except RankFailed as exc:
            # Another rank failed or left: the frames on disk stay; a resume goes on.
            self._mark("interrupted", error=str(exc))
            emit(Failed(str(exc), bad_input=exc.bad_input,
                        session_dir=self.session.path if self.session else None))
        except Cancelled:
            done = self._mark("interrupted")
            emit(Interrupted(self.session.path if self.session else None, done))
        except torch.cuda.OutOfMemoryError:
            self._mark("interrupted")
            emit(Failed("CUDA out of memory: try a smaller batch_size, height/width or "
                        "vae_slicing; the session is kept and can be resumed", bad_input=False,
                        session_dir=self.session.path if self.session else None))
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                message = "disk full: stopped cleanly; free space, then resume the session"
            else:
                message = one_line(f"{exc.__class__.__name__}: {exc}")
            self._mark("interrupted" if exc.errno == errno.ENOSPC else "failed", error=message)
            emit(Failed(message, bad_input=False,
                        session_dir=self.session.path if self.session else None))
        except Exception as exc:  # reported as an event; the CLI exits 1
            message = one_line(str(exc) if isinstance(exc, RenderFault)
                               else f"{exc.__class__.__name__}: {exc}")
            self._mark("failed", error=message)
            emit(Failed(message, bad_input=False,
                        session_dir=self.session.path if self.session else None))
        finally:
            self._restore.close()
            if self.session is not None:
                self.session.release()

    def _mark(self, state: str, **extra: Any) -> int:
        if self.session is None:
            return 0
        if not self._started:
            return stored_count(self.session.manifest, "frames_done") or 0
        try:
            self.session.update(state=state, **extra)
        except OSError:
            pass  # the disk may be full; the frames on disk are still consistent
        return stored_count(self.session.manifest, "frames_done") or 0

    def _run(self, emit: Callable[[Event], None]) -> None:
        group = self.options.group
        root = group is None or group.is_root
        existing: Session | None = None

        def effective() -> tuple[dict[str, Any], dict[str, Any], bool]:
            nonlocal existing
            cfg, existing = self._effective_config()
            if existing is None:
                return cfg.model_dump(), {}, False
            finished = existing.finished and not EXPERIMENTS[cfg.exp_identifier].continuable
            return cfg.model_dump(), existing.manifest, finished and not existing.repairs

        # Every rank plans the same journey: rank 0's config (its seed drawn) and, for a
        # resume, its manifest (diffevolution replays the stored answers).
        shared = effective() if group is None else _from_root(group, effective)
        cfg, manifest = ExperimentConfig.model_validate(shared[0]), shared[1]
        if shared[2]:
            # A finished session found whole: nothing is loaded, rendered or rewritten.
            emit(Notice(f"{cfg.exp_identifier} is finished: nothing to resume (`lse export` "
                        "writes its GIF/MP4 again)"))
            emit(Finished(Path(self.resume_dir), stored_count(manifest, "frames_done") or 0))
            return

        try:
            model, device, dtype, load_s = self._load(cfg, manifest, emit)
            compiled = compile_wanted(cfg.compile, device)
            if compiled:
                self._restore.enter_context(compile_cache())
            if compiled and compile_model(model):
                emit(Notice("compiling the model for this GPU (first run only: later runs "
                            "read the compile cache)…"))
            engine = engine_for(model)
            experiment = EXPERIMENTS[cfg.exp_identifier](cfg, model, engine,
                                                         lambda m: emit(Notice(m)), saved=manifest)
            experiment.prepare()
            failed = None
        except Exception as exc:  # every rank must hear of it before anyone goes on
            if group is None:
                raise
            failed = exc
        if group is not None:
            group.check(failed)
        if root and existing is None:
            for key in sorted(set(ignored_keys(cfg.exp_identifier)) & self.cfg.model_fields_set):
                emit(Notice(f"key '{key}' is not used by {cfg.exp_identifier}; ignoring it"))
        if self._cancel.is_set():
            raise Cancelled()

        if root:
            session = self._session(cfg, existing, experiment, model, device, dtype, load_s,
                                    compiled, emit)
            if group is not None and (note := experiment.split_note(session.batch_size, group.size)):
                emit(Notice(note))
        shared = (session.path, session.batch_size, _fixed_shapes(session.manifest, compiled)
                  ) if root else None
        if group is not None:
            shared = _from_root(group, lambda: shared)
            if not root:  # writes its frames into the folder; session.json is rank 0's
                session = Session(Path(shared[0]), manifest, keeps_records=False)
                session.load_verified()  # the frames rank 0 found whole
        batch_size, fixed_shapes = shared[1], shared[2]
        emit(Started(session.path, experiment.frames_planned, 0, batch_size,
                     steps_run(experiment.settings(), cfg.model_identifier == "img2img"),
                     group.size if group is not None else 1))
        preview = None
        if self.options.live_preview and cfg.live_preview and group is None:
            from .live_preview import preview_for
            from .tiny import cache_root

            preview = preview_for(model, cache_root())
        driver = PlanDriver(session, engine, batch_size, cfg.gif_frame_dur, emit,
                            self._cancel, self._choices, fixed_shapes=fixed_shapes, group=group,
                            preview=preview, img2img=cfg.model_identifier == "img2img")
        driver.drive(experiment.plan())
        if root:
            session.update(state="done", frames_done=driver.frames_done,
                           unet_evaluations=driver.unet_evaluations)
        emit(Finished(session.path, driver.frames_done, tuple(driver.outputs)))

    def _effective_config(self) -> tuple[ExperimentConfig, Session | None]:
        """The config to run (its seed drawn), and the session when resuming one."""
        if self.resume_dir is None:
            cfg = with_defaults(self.cfg)
            preflight(cfg)
            return cfg, None
        # Claimed before anything else: a second writer is turned away at once.
        # A damaged manifest, config or journal is refused here, before the model loads.
        existing = Session.open(self.resume_dir).claim()
        self.session = existing
        cfg = existing.config()
        preflight(cfg)
        media_entries(existing)
        if existing.manifest.get("torch_threads") and _same_device(existing.manifest) == "cpu":
            # A CPU's results depend on its thread count: resume as the session began.
            self._restore.enter_context(torch_threads(existing.manifest["torch_threads"]))
        self._removed = existing.verify()  # before the model loads: a finished one may be whole
        return cfg, existing

    def _load(self, cfg: ExperimentConfig, manifest: dict[str, Any],
              emit: Callable[[Event], None]) -> tuple[LoadedModel, torch.device, torch.dtype, float]:
        group = self.options.group
        gpu_id = group.local_rank if group is not None else cfg.gpu_id
        device = pick_device(self.options.device or _same_device(manifest), gpu_id)
        if group is not None and device.type == "cuda":
            device = torch.device("cuda", group.local_rank)  # one GPU per rank on each machine
        dtype = pick_dtype(self.options.dtype or _stored_dtype(manifest), device)
        inpaint = cfg.model_identifier == "inpaint"
        if builds_first(cfg.model_id, inpaint, device, dtype):
            emit(Notice(f"building the {cfg.model_id} model (once; later runs load it from "
                        "the cache)…"))
        started = time.perf_counter()
        model = load_model(cfg.model_id, inpaint, device, dtype, lambda line: emit(Notice(line)))
        load_s = time.perf_counter() - started
        emit(Loaded(cfg.model_id, str(device), str(dtype).removeprefix("torch."), load_s))
        for note in apply_memory_options(model, cfg.att_slicing, cfg.vae_slicing, cfg.vae_tiling,
                                         cfg.enable_xformers):
            emit(Notice(note))
        return model, device, dtype, load_s

    def _session(self, cfg: ExperimentConfig, existing: Session | None, experiment, model,
                 device: torch.device, dtype: torch.dtype, load_s: float, compiled: bool,
                 emit: Callable[[Event], None]) -> Session:
        """The resumed session, checked, or a new one."""
        if existing is not None:
            removed = self._removed
            if removed:
                emit(Notice(f"{len(removed)} damaged file(s) will be made again: "
                            f"{', '.join(removed[:3])}{' …' if len(removed) > 3 else ''}"))
            existing.update(state="running", error=None)
            self._started = True
            return existing
        height, width = experiment.inputs.size()
        group = self.options.group
        self.session = Session.create(cfg, {
            "versions": _versions(),
            "model_id": cfg.model_id,
            "model_source": model.source,
            "device": str(device),
            "dtype_name": str(dtype).removeprefix("torch."),
            "torch_threads": torch.get_num_threads(),
            "ranks": group.size if group is not None else 1,
            "batch_size": cfg.batch_size or default_batch_size(model, height, width),
            "fixed_shapes": (compiled if self.options.fixed_shapes is None
                             else self.options.fixed_shapes),
            "frames_planned": experiment.frames_planned,
            "timings": {"load_s": round(load_s, 3), "render_s": 0.0},
        })
        self._started = True
        return self.session


def _from_root(group: Group, make: Callable[[], Any]) -> Any:
    """Rank 0's ``make()`` on every rank; if it fails there, every rank stops."""
    if group.is_root:
        try:
            value = make()
        except Exception as exc:
            group.broadcast(failure_of(exc))
            raise
        return group.broadcast(value)
    value = group.broadcast()
    if isinstance(value, Failure):
        raise RankFailed(0, value.reason, value.bad_input)
    return value


def _same_device(manifest: dict[str, Any]) -> str | None:
    """Resume on the device the session used when it is available, for identical frames."""
    device = manifest.get("device")
    if not isinstance(device, str) or not DEVICE_PATTERN.fullmatch(device):
        return None
    if device.startswith("cuda") and not torch.cuda.is_available():
        return None
    return device


def _fixed_shapes(manifest: dict[str, Any], compiled: bool) -> bool:
    """Whether batches are padded: as the session stored it (padding a batch of one frame
    can change its bytes), or, in a session made before it was stored, when compiled."""
    stored = manifest.get("fixed_shapes")
    return stored if isinstance(stored, bool) else compiled


def _stored_dtype(manifest: dict[str, Any]) -> str | None:
    dtype = manifest.get("dtype_name")
    return dtype if dtype in DTYPES else None


def _versions() -> dict[str, str]:
    import diffusers
    import transformers

    return {"lse": __version__, "torch": torch.__version__, "diffusers": diffusers.__version__,
            "transformers": transformers.__version__}
