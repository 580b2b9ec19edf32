"""Driving an experiment's plan: its requests go to the engine, frames to the session,
and what happened to the front end as events.

Rendering and saving overlap: a batch's frames are written by an ``OrderedWriter``
while the next batch renders, and a frame is announced (``FrameReady``) only once
it is on disk, so every guarantee of a saved frame holds when the UI hears of it.
A request's jobs are taken one round of batches at a time and nothing rendered is
kept once it is saved (unless the plan asked for the results), so memory stays the
size of a batch however long the journey.
"""

from __future__ import annotations

import queue
import threading
import time
from itertools import islice
from pathlib import Path
from typing import Any, Callable, Iterator

from .engine import Engine, RenderedFrame, RenderSettings, steps_run
from .errors import Cancelled
from .events import (Event, FrameReady, GenerationReady, MediaWritten, Notice, Step, StepPreview,
                     WaitingForChoice)
from .experiments.base import AskChoice, Copy, FrameJob, Media, Plan, Record, Render, SaveImages
from .frames import FrameRecord
from .live_preview import LatentPreview
from .media import video_unavailable, write_media
from .distributed import Group, failure_of
from .session import FrameFiles, Session, stored_count
from .writer import OrderedWriter


STOPPED = "stopped"  # rank 0's word to the others when the user stops at a question


class PlanDriver:
    """Feeds an experiment's requests to the engine and the session.

    ``fixed_shapes``: pad every batch of a request to one size (the compiled
    engine then never recompiles mid-journey). ``group``: the ranks of a torchrun
    launch, which share the batches; rank 0 alone writes ``session.json`` and the
    journal, asks the user and writes the media.
    """

    def __init__(self, session: Session, engine: Engine, batch_size: int, frame_ms: int,
                 emit: Callable[[Event], None], cancel: threading.Event,
                 choices: queue.Queue[Any], fixed_shapes: bool = False,
                 group: Group | None = None, preview: LatentPreview | None = None,
                 img2img: bool = False) -> None:
        self.session = session
        self.preview = preview  # live step previews (the TUI); None: no preview work at all
        self.engine = engine
        self.batch_size = batch_size
        self.frame_ms = frame_ms
        self.emit = emit
        self.cancel = cancel
        self.choices = choices
        self.fixed_shapes = fixed_shapes
        self.group = group
        self.root = group is None or group.is_root
        self.writer = OrderedWriter()
        self.frames_done = 0
        # A resume walks the plan from its start; until it passes the frames a stopped
        # run had finished, the manifest keeps showing that count rather than going back.
        self.done_before = stored_count(session.manifest, "frames_done") or 0
        self.outputs: list[Path] = []
        self.video_skipped = False
        self.img2img = img2img
        # The UNet work of the journey's frames (see ``evaluations_per_frame``), counted
        # for frames a resume finds on disk too: a resumed journey reports what an
        # uninterrupted one does.
        self.unet_evaluations = 0
        self.evaluations_before = stored_count(session.manifest, "unet_evaluations") or 0

    def drive(self, plan: Plan) -> None:
        try:
            reply: Any = None
            while True:
                try:
                    request = plan.send(reply)
                except StopIteration:
                    break
                reply = self._handle(request)
        finally:
            # Frames already rendered are saved even when the run stops or fails.
            self.writer.close()

    def _handle(self, request: Any) -> Any:
        if isinstance(request, Render):
            return self._render(request)
        if isinstance(request, SaveImages):
            return self._save_images(request)
        if isinstance(request, AskChoice):
            return self._choice(request)
        if not self.root:
            return None  # the rest is rank 0's: the manifest, copies and media
        # Everything else reads frames from disk or records what is there: saved first.
        self.writer.flush()
        if isinstance(request, Media):
            return self._media(request)
        if isinstance(request, Copy):
            return self._copy(request)
        if isinstance(request, Record):
            self.session.update(**request.fields)
            return None
        raise TypeError(f"unknown request {request!r}")

    def _choice(self, request: AskChoice) -> Any:
        """The user's answer (rank 0 asks; the other ranks receive it)."""
        choice: Any = None
        if self.root:
            self.writer.flush()
            self.emit(WaitingForChoice(request.generation, request.genes, request.help,
                                       request.lineage, request.parent))
            try:
                choice = self._wait_for_choice()
            except Cancelled:
                if self.group is not None:
                    self.group.broadcast(STOPPED)
                raise
        if self.group is not None:
            choice = self.group.broadcast(choice)
            if choice == STOPPED:
                raise Cancelled()
        return choice

    def _wait_for_choice(self) -> Any:
        while True:
            if self.cancel.is_set():
                raise Cancelled()
            try:
                return self.choices.get(timeout=0.1)
            except queue.Empty:
                continue

    # rendering ----------------------------------------------------------------
    def _render(self, request: Render) -> list[RenderedFrame] | None:
        # Batches start at fixed multiples of batch_size within the request, so a
        # resume (with any number of ranks) forms exactly the batches of the first run
        # and gets the same bytes.
        ranks = self.group.size if self.group is not None else 1
        rank = self.group.rank if self.group is not None else 0
        results: list[RenderedFrame] | None = [] if request.results else None
        names: list[str] = []
        pad_to = None
        # Rank r renders batch r of each round of `ranks` batches.
        for chunks in _rounds(iter(request.jobs), self.batch_size, ranks):
            if self.fixed_shapes and pad_to is None:
                pad_to = len(chunks[0])  # the request's first batch: full unless it is all
            if request.generation is not None:
                names += [job.name for chunk in chunks for job in chunk]
            self.unet_evaluations += self.evaluations_per_frame(request.settings) * sum(map(len, chunks))
            try:
                if self.cancel.is_set():
                    raise Cancelled()
                done = self._chunk(chunks[rank], request, pad_to) if rank < len(chunks) else None
            except Exception as exc:  # every rank must hear of it before anyone goes on
                if self.group is None:
                    raise
                done = failure_of(exc)
            if self.group is None:
                if results is not None:
                    results.extend(done[0])
                continue
            self.writer.flush()  # what rank 0 announces is on disk
            for offset, item in enumerate(self.group.gather(done)[:len(chunks)]):
                rendered, from_disk = item
                if results is not None:
                    results.extend(rendered)
                if self.root and offset != rank and request.keep:
                    self._adopt(chunks[offset], from_disk)
        if request.generation is not None and self.root:
            self.writer.flush()  # the grid shows the genes from disk
            self.emit(GenerationReady(request.generation, tuple(names),
                                      tuple(self.session.image_path(n) for n in names)))
        return results

    def _chunk(self, chunk: list[FrameJob], request: Render,
               pad_to: int | None) -> tuple[list[RenderedFrame] | None, bool]:
        """One batch, rendered (and saved) or found on disk from an earlier run; its
        frames come back only when the plan wants them. A batch whose partly denoised
        latents the plan wants (latent blending's keyframes) is rendered again when
        found on disk, and not saved again."""
        want = request.results
        on_disk = request.keep and all(self._job_on_disk(job) for job in chunk)
        if on_disk and self.root:
            self.writer.submit(self._announce_all, chunk, None, True)
        if on_disk and request.settings.keep_step is None:
            return ([self._from_disk(job) for job in chunk] if want else None), True
        rendered = self._render_chunk(chunk, request.settings, pad_to,
                                      save=request.keep and not on_disk)
        return (rendered if want else None), on_disk

    def _adopt(self, chunk: list[FrameJob], from_disk: bool) -> None:
        """Rank 0 takes in a batch another rank saved: its records and its announcement."""
        if not from_disk:
            for job in chunk:
                for record in (*job.steps, job.record):
                    self.session.record(self.session.embedding_path(record.name))
                    self.session.record(self.session.image_path(record.name))
                    self.session.record_frame(record)
        self._announce_all(chunk, None, from_disk)

    def _render_chunk(self, chunk: list[FrameJob], settings: RenderSettings,
                      pad_to: int | None, save: bool) -> list[RenderedFrame]:
        names = tuple(job.name for job in chunk)
        inputs = [job.make_input() for job in chunk]
        started = time.perf_counter()
        on_latents = None
        if self.preview is not None:
            preview = self.preview
            on_latents = lambda step, total, latents: self.emit(  # noqa: E731
                StepPreview(names, step, total, tuple(preview.images(latents))))
        rendered = self.engine.render(
            inputs, settings,
            on_step=lambda step, total: self.emit(Step(names, step, total)),
            cancel=self.cancel, pad_to=pad_to, on_latents=on_latents,
        )
        for job, frame in zip(chunk, rendered):
            if job.finish is not None:
                frame.image = job.finish(frame.image)
        if save:
            self.writer.submit(self._save_chunk, chunk, inputs, rendered,
                               time.perf_counter() - started)
        elif self.root:
            self.session.add_time("render_s", time.perf_counter() - started)
        return rendered

    # saving (on the writer's thread) ---------------------------------------------
    def _save_chunk(self, chunk: list[FrameJob], inputs, rendered: list[RenderedFrame],
                    render_s: float) -> None:
        files = []
        for job, frame_input, frame in zip(chunk, inputs, rendered):
            for record, (step_embed, step_image) in zip(job.steps, frame.steps):
                if record.name != job.name:  # the final frame is written just below
                    files.append(FrameFiles(record, step_image, frame_input.prompt_embed,
                                            frame_input.noise, step_embed))
            files.append(FrameFiles(job.record, frame.image, frame_input.prompt_embed,
                                    frame_input.noise, frame.image_embed))
        self.session.write_frames(files)
        if self.root:
            self.session.add_time("render_s", render_s)
            self._announce_all(chunk, rendered, False)

    def _announce(self, record: FrameRecord, image: Any = None, from_disk: bool = False,
                  steps: tuple[FrameRecord, ...] = ()) -> None:
        """A frame (and the frames of its steps) is on disk: tell the front end and count it."""
        before = tuple((r, self.session.image_path(r.name)) for r in steps if r.name != record.name)
        self.frames_done += len(before)
        self.emit(FrameReady(self.frames_done, record, self.session.image_path(record.name),
                             image, from_disk, before))
        self.frames_done += 1

    def _announce_all(self, chunk: list[FrameJob], rendered: list[RenderedFrame] | None,
                      from_disk: bool) -> None:
        for index, job in enumerate(chunk):
            if from_disk:  # a session made before frames were recorded learns them now
                for record in (*job.steps, job.record):
                    self.session.record_frame(record, unless_known=True)
            image = rendered[index].image if rendered is not None else None
            self._announce(job.record, image, from_disk, job.steps)
        self._save_progress()

    def evaluations_per_frame(self, settings: RenderSettings) -> int:
        """UNet evaluations of one frame: its denoising steps, twice each with
        classifier-free guidance (the conditional and unconditional rows). A second-order
        scheduler's extra call per step is not counted: steps compare across schedulers."""
        guided = settings.guidance_scale != 1
        return steps_run(settings, self.img2img) * (2 if guided else 1)

    def _save_progress(self) -> None:
        self.session.update(frames_done=max(self.done_before, self.frames_done),
                            unet_evaluations=max(self.evaluations_before, self.unet_evaluations))

    def _save_images(self, request: SaveImages) -> None:
        """Frames made without diffusion; with several ranks each writes its share."""
        ranks = self.group.size if self.group is not None else 1
        rank = self.group.rank if self.group is not None else 0
        mine = [(record, image) for i, (record, image) in enumerate(request.images)
                if i % ranks == rank]
        self.writer.submit(self._write_images, mine)
        if self.group is not None:
            self.writer.flush()
            self.group.gather(None)  # all shares are on disk
        if self.root:
            self.writer.submit(self._announce_images, request, {r.name for r, _ in mine})

    def _write_images(self, images: list[tuple[FrameRecord, Any]]) -> None:
        for record, image in images:
            self.session.write_image(record, image)

    def _announce_images(self, request: SaveImages, written_here: set[str]) -> None:
        for record, image in request.images:
            if record.name not in written_here:
                self.session.record(self.session.image_path(record.name))
                self.session.record_frame(record)
            self._announce(record, image)
        self._save_progress()

    def _copy(self, request: Copy) -> None:
        for source, target in request.pairs:
            self.session.copy_frame(source, target)
            self._announce(target)
        self._save_progress()

    # resuming and media -----------------------------------------------------------
    def _job_on_disk(self, job: FrameJob) -> bool:
        return self.session.has_frame(job.name) and all(self.session.has_frame(r.name) for r in job.steps)

    def _from_disk(self, job: FrameJob) -> RenderedFrame:
        embed = self.session.read_embedding(job.name)["image_embed"]
        return RenderedFrame(image_embed=embed, image=self.session.read_image(job.name))

    def _media(self, request: Media) -> None:
        self.session.record_media(request.entry())
        self.session.update()
        video = request.video
        if video and (reason := video_unavailable()):
            video = False
            if not self.video_skipped:
                self.video_skipped = True
                self.emit(Notice(f"{reason}; skipping MP4 videos (GIFs are written)"))
        paths = write_media(self.session, request, gif=True, video=video, fps=1000 / self.frame_ms)
        for path in paths:
            self.session.record(path)
        grids = ()
        if request.grid and request.record is not None:
            self.session.record_frame(request.record)
            grids = ((request.record, paths[0]),)
        self.session.update()
        self.outputs.extend(paths)
        self.emit(MediaWritten(tuple(paths), grids))


def _rounds(jobs: Iterator[FrameJob], batch_size: int, ranks: int) -> Iterator[list[list[FrameJob]]]:
    """The jobs in rounds of up to ``ranks`` batches of ``batch_size``, taken as needed."""
    while taken := list(islice(jobs, batch_size * ranks)):
        yield [taken[i : i + batch_size] for i in range(0, len(taken), batch_size)]
