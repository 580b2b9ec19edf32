"""Running an experiment: an async iterator of events over a worker thread.

config → experiment plan → engine (batched) → frames → session → events.
The heavy work runs in one thread so the caller's event loop stays free; the
TUI consumes ``events()`` in a worker and the CLI with ``asyncio.run``.
"""

from __future__ import annotations

import asyncio
import errno
import queue
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, AsyncIterator, Callable

import torch

from . import __version__
from .config import ExperimentConfig, with_defaults
from .engine import Engine, RenderedFrame, RenderSettings, steps_run
from .errors import BadInput, Cancelled
from .events import (
    FINAL_EVENTS,
    Event,
    Failed,
    Finished,
    FrameReady,
    GenerationReady,
    Interrupted,
    Loaded,
    MediaWritten,
    Notice,
    Started,
    Step,
    WaitingForChoice,
)
from .experiments import EXPERIMENTS
from .experiments.base import AskChoice, Copy, FrameJob, Media, Record, Render, SaveImages
from .media import save_png, write_media
from .models import (
    LoadedModel,
    apply_memory_options,
    compile_unet,
    load_model,
    pick_device,
    pick_dtype,
    resolve_scheduler_name,
)
from .session import Session

CPU_BATCH = 4
# Rough UNet+VAE activation memory of one 768x768 frame with CFG in fp16; only
# used to pick a default batch size, which is then stored in the session.
GPU_BYTES_PER_FRAME_768 = 1.2e9
MAX_BATCH = 16


@dataclass
class RunOptions:
    device: str | None = None
    dtype: str | None = None


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
            if self.session is not None:
                self.session.update(state="failed", error=str(exc))
            emit(Failed(str(exc), bad_input=True,
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
                message = f"{exc.__class__.__name__}: {exc}"
            self._mark("interrupted" if exc.errno == errno.ENOSPC else "failed", error=message)
            emit(Failed(message, bad_input=False,
                        session_dir=self.session.path if self.session else None))
        except Exception as exc:  # reported as an event; the CLI exits 1
            message = f"{exc.__class__.__name__}: {exc}"
            self._mark("failed", error=message)
            emit(Failed(message, bad_input=False,
                        session_dir=self.session.path if self.session else None))

    def _mark(self, state: str, **extra: Any) -> int:
        if self.session is None:
            return 0
        try:
            self.session.update(state=state, **extra)
        except OSError:
            pass  # the disk may be full; the frames on disk are still consistent
        return int(self.session.manifest.get("frames_done", 0))

    def _run(self, emit: Callable[[Event], None]) -> None:
        manifest: dict[str, Any] = {}
        existing = None
        if self.resume_dir is not None:
            existing = Session.open(self.resume_dir)
            cfg = existing.config()
            manifest = existing.manifest
        else:
            cfg = with_defaults(self.cfg)
        resolve_scheduler_name(cfg.scheduler)

        device = pick_device(self.options.device or _same_device(manifest), cfg.gpu_id)
        dtype = pick_dtype(self.options.dtype or manifest.get("dtype_name"), device)
        started = time.perf_counter()
        model = load_model(cfg.model_id, cfg.model_identifier == "inpaint", device, dtype)
        load_s = time.perf_counter() - started
        emit(Loaded(cfg.model_id, str(device), str(dtype).removeprefix("torch."), load_s))
        for note in apply_memory_options(model, cfg.att_slicing, cfg.vae_slicing, cfg.vae_tiling,
                                         cfg.enable_xformers):
            emit(Notice(note))
        if cfg.compile and device.type == "cuda":
            compile_unet(model)

        engine = engine_for(model)
        experiment = EXPERIMENTS[cfg.exp_identifier](cfg, model, engine, lambda m: emit(Notice(m)),
                                                     saved=manifest)
        experiment.prepare()
        if existing is None:
            for key in sorted(set(experiment.ignored_keys) & self.cfg.model_fields_set):
                emit(Notice(f"key '{key}' is not used by {cfg.exp_identifier}; ignoring it"))
        if self._cancel.is_set():
            raise Cancelled()

        if existing is not None:
            self.session = existing
            batch_size = int(self.session.manifest["batch_size"])
            self.session.update(state="running", error=None)
        else:
            height, width = experiment.inputs.size()
            batch_size = cfg.batch_size or default_batch_size(model, height, width)
            self.session = Session.create(cfg, {
                "versions": _versions(),
                "model_id": cfg.model_id,
                "model_source": model.source,
                "device": str(device),
                "dtype_name": str(dtype).removeprefix("torch."),
                "batch_size": batch_size,
                "frames_planned": experiment.frames_planned,
                "timings": {"load_s": round(load_s, 3), "render_s": 0.0},
            })
        self.session.update(frames_done=0)
        emit(Started(self.session.path, experiment.frames_planned, 0, batch_size,
                     steps_run(experiment.settings(), cfg.model_identifier == "img2img")))
        driver = _PlanDriver(self.session, engine, batch_size, cfg.gif_frame_dur, emit,
                             self._cancel, self._choices)
        driver.drive(experiment.plan())
        self.session.update(state="done", frames_done=driver.frames_done)
        emit(Finished(self.session.path, driver.frames_done, tuple(driver.outputs)))


def _same_device(manifest: dict[str, Any]) -> str | None:
    """Resume on the device the session used when it is available, for identical frames."""
    device = manifest.get("device")
    if device and (not device.startswith("cuda") or torch.cuda.is_available()):
        return device
    return None


def _versions() -> dict[str, str]:
    import diffusers
    import transformers

    return {"lse": __version__, "torch": torch.__version__, "diffusers": diffusers.__version__,
            "transformers": transformers.__version__}


class _PlanDriver:
    """Feeds an experiment's requests to the engine and the session."""

    def __init__(self, session: Session, engine: Engine, batch_size: int, frame_ms: int,
                 emit: Callable[[Event], None], cancel: threading.Event,
                 choices: queue.Queue[Any]) -> None:
        self.session = session
        self.engine = engine
        self.batch_size = batch_size
        self.frame_ms = frame_ms
        self.emit = emit
        self.cancel = cancel
        self.choices = choices
        self.frames_done = 0
        self.outputs: list[Path] = []

    def drive(self, plan) -> None:
        reply: Any = None
        while True:
            try:
                request = plan.send(reply)
            except StopIteration:
                return
            reply = self._handle(request)

    def _handle(self, request: Any) -> Any:
        if isinstance(request, Render):
            return self._render(request)
        if isinstance(request, Media):
            return self._media(request)
        if isinstance(request, SaveImages):
            return self._save_images(request)
        if isinstance(request, Copy):
            return self._copy(request)
        if isinstance(request, AskChoice):
            self.emit(WaitingForChoice(request.generation, request.genes, request.help,
                                       request.lineage, request.parent))
            return self._wait_for_choice()
        if isinstance(request, Record):
            self.session.update(**request.fields)
            return None
        raise TypeError(f"unknown request {request!r}")

    def _wait_for_choice(self) -> Any:
        while True:
            if self.cancel.is_set():
                raise Cancelled()
            try:
                return self.choices.get(timeout=0.1)
            except queue.Empty:
                continue

    def _render(self, request: Render) -> list[RenderedFrame]:
        results: list[RenderedFrame] = []
        # Batches start at fixed multiples of batch_size within the request, so a
        # resume forms exactly the batches of the first run and gets the same bytes.
        for start in range(0, len(request.jobs), self.batch_size):
            if self.cancel.is_set():
                raise Cancelled()
            chunk = request.jobs[start : start + self.batch_size]
            if all(self._job_on_disk(job) for job in chunk):
                rendered = [self._from_disk(job) for job in chunk]
                self._report(chunk, rendered, from_disk=True)
            else:
                rendered = self._render_chunk(chunk, request.settings)
            results.extend(rendered)
        if request.generation is not None:
            self.emit(GenerationReady(request.generation, tuple(j.name for j in request.jobs),
                                      tuple(self.session.image_path(j.name) for j in request.jobs)))
        return results

    def _render_chunk(self, chunk: list[FrameJob], settings: RenderSettings) -> list[RenderedFrame]:
        names = tuple(job.name for job in chunk)
        started = time.perf_counter()
        rendered = self.engine.render(
            [job.input for job in chunk], settings,
            on_step=lambda step, total: self.emit(Step(names, step, total)),
            cancel=self.cancel,
        )
        for job, frame in zip(chunk, rendered):
            if job.finish is not None:
                frame.image = job.finish(frame.image)
            for step_name, (step_embed, step_image) in zip(job.step_names, frame.steps):
                if step_name == job.name:
                    continue  # the final frame is written just below
                self.session.write_frame(step_name, step_image, job.input.prompt_embed,
                                         job.input.noise, step_embed)
            self.session.write_frame(job.name, frame.image, job.input.prompt_embed,
                                     job.input.noise, frame.image_embed)
        timings = dict(self.session.manifest.get("timings", {}))
        timings["render_s"] = round(timings.get("render_s", 0.0) + time.perf_counter() - started, 3)
        self.session.manifest["timings"] = timings
        self._report(chunk, rendered, from_disk=False)
        return rendered

    def _announce(self, name: str, image, from_disk: bool = False,
                  step_names: tuple[str, ...] = ()) -> None:
        """A frame (and the frames of its steps) is on disk: tell the front end and count it."""
        steps = tuple(self.session.image_path(n) for n in step_names if n != name)
        self.emit(FrameReady(self.frames_done, name, self.session.image_path(name), image, from_disk,
                             steps))
        self.frames_done += 1

    def _report(self, chunk: list[FrameJob], rendered: list[RenderedFrame], from_disk: bool) -> None:
        for job, frame in zip(chunk, rendered):
            self._announce(job.name, frame.image, from_disk, job.step_names)
        self.session.update(frames_done=self.frames_done)

    def _save_images(self, request: SaveImages) -> None:
        for name, image in request.images:
            save_png(image, self.session.image_path(name))
            self._announce(name, image)
        self.session.update(frames_done=self.frames_done)

    def _copy(self, request: Copy) -> None:
        for source, target in request.pairs:
            self.session.copy_frame(source, target)
            self._announce(target, self.session.read_image(target))
        self.session.update(frames_done=self.frames_done)

    def _job_on_disk(self, job: FrameJob) -> bool:
        return self.session.has_frame(job.name) and all(self.session.has_frame(n) for n in job.step_names)

    def _from_disk(self, job: FrameJob) -> RenderedFrame:
        embed = self.session.read_embedding(job.name)["image_embed"]
        return RenderedFrame(image_embed=embed, image=self.session.read_image(job.name))

    def _media(self, request: Media) -> None:
        entry = asdict(request)
        recorded = [m for m in self.session.manifest.get("media", []) if m["name"] != request.name]
        self.session.update(media=recorded + [entry])
        paths = write_media(self.session, request, gif=True, video=request.video,
                            fps=1000 / self.frame_ms)
        self.outputs.extend(paths)
        self.emit(MediaWritten(tuple(paths)))
