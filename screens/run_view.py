"""The run view: live progress, the latest frame inline, a strip of finished frames.

It only renders the core's events and forwards the user's keys (stop, and the
diffevolution grid's answers); the work itself runs in the core's thread.
Frames are listed in story order, by the position and with the label the
experiment gave each frame (its ``FrameRecord``), visualize-diffusion's step frames
and grid included, whatever order they are made in.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Protocol

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Label, OptionList, ProgressBar, RichLog, Static
from textual.widgets.option_list import Option

from lse_core.events import (
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
    StepPreview,
    WaitingForChoice,
)
from lse_core.choices import Choice
from lse_core.errors import BadInput, printable
from lse_core.frames import FrameRecord

from .clipboard import in_tmux, to_tmux_buffer, where_it_went
from .evolution import EvolutionScreen, describe
from .preview import FramePreview, live_mosaic
from .run_progress import RunProgress
from .texts import count, plain
from .viewer import FrameViewer


class PrintableLog(RichLog):
    """The run's log: its lines quote paths, prompts and messages taken from files."""

    def write(self, content: Any, *args: Any, **kwargs: Any) -> "PrintableLog":
        return super().write(plain(content) if isinstance(content, str) else content,
                             *args, **kwargs)


class RunLike(Protocol):
    """What the view needs of a run: ``lse_core.run.ExperimentRun`` has it."""

    def events(self) -> AsyncIterator[Event]: ...

    def cancel(self) -> None: ...

    def choose(self, action: Any) -> None: ...


class RunScreen(Screen[BadInput | None]):
    """Dismissed with the bad input found before any session existed, so the form can
    show it at its key's field; otherwise with None."""

    CSS_PATH = "run_view.tcss"
    HELP_TITLE = "Run view"
    WIDGET_KEYS = (("tab", "To the frames list, where ↑ ↓ choose a frame"),)

    class ModelLoaded(Message):
        """Tells the app which model, device and dtype are in use (its status line)."""

        def __init__(self, loaded: Loaded) -> None:
            super().__init__()
            self.loaded = loaded

    BINDINGS = [
        Binding("g", "open_grid", "Choose", id="run.grid",
                tooltip="Back to the diffevolution grid that waits for your choice"),
        Binding("q", "stop", "Stop (resumable)", id="run.stop",
                tooltip="Stop; finished frames stay and the session can be resumed"),
        Binding("left,h", "step_frame(-1)", "Prev", key_display="←", id="run.prev"),
        Binding("right,l", "step_frame(1)", "Next", key_display="→", id="run.next"),
        Binding("z", "zoom", "Zoom", id="run.zoom",
                tooltip="The frame shown as large as the terminal allows"),
        Binding("y", "copy_path", "Copy path", id="run.copy",
                tooltip="Copy the session folder's path to the clipboard"),
        Binding("escape", "back", "Back", id="run.back"),
    ]

    # Live step previews are drawn at most this often: a fast model makes many steps a
    # second, and drawing each would keep the terminal busy and the keys waiting.
    LIVE_INTERVAL = 0.25

    def __init__(self, run: RunLike, title: str, graphics: str,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.run = run
        self.title_text = title
        self.graphics = graphics
        self.progress = RunProgress(clock=clock)
        self.frames: list[tuple[FrameRecord, Path]] = []  # in story order
        self._places: dict[str, int] = {}  # a frame's index in ``frames``, by name
        self.shown_name: str | None = None
        self.following = True  # the preview shows each new frame until the user moves
        self.session_dir: Path | None = None
        self.final: Event | None = None
        self.stopping = False
        # Diffevolution: the generation on screen, the last question, the last notice,
        # the question not answered yet, and the problem the grid shows with it.
        self.generation: GenerationReady | None = None
        self.asked: WaitingForChoice | None = None
        self.notice: str | None = None
        self.waiting: WaitingForChoice | None = None
        self.problem: str | None = None
        self.grid_open = False
        self.live: StepPreview | None = None  # the latest live preview, not drawn yet
        self.live_due = False  # a draw of ``live`` is scheduled

    @property
    def running(self) -> bool:
        return self.final is None

    @property
    def shown(self) -> int | None:
        """The index in ``frames`` of the frame in the preview."""
        return self._places.get(self.shown_name) if self.shown_name is not None else None

    def compose(self) -> ComposeResult:
        yield Label(plain(self.title_text), id="run-title")
        yield Static("loading model…", id="run-status")
        with Horizontal(id="bars"):
            yield Label("frames", classes="bar-label")
            yield ProgressBar(id="frames-bar", show_eta=False)
            yield Label("steps", classes="bar-label")
            yield ProgressBar(id="steps-bar", show_eta=False)
        with Horizontal(id="run-main"):
            yield FramePreview(self.graphics, id="preview")
            with Vertical(id="strip"):
                yield Label("frames (←/→, z: zoom)", classes="strip-title")
                yield OptionList(id="frame-list")
        # min_width 0: lines wrap at the log's own width (its default, 78, cuts them at 80 columns).
        yield PrintableLog(id="run-log", wrap=True, markup=False, min_width=0)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.consume()

    @work(exclusive=True, group="run")
    async def consume(self) -> None:
        # The core's iterator awaits a queue fed by its worker thread, so this
        # loop yields to the UI between events and keys stay responsive.
        async for event in self.run.events():
            self.apply(event)

    # events -------------------------------------------------------------------
    def apply(self, event: Event) -> None:
        """Render one core event."""
        log = self.query_one("#run-log", RichLog)
        if isinstance(event, Loaded):
            log.write(f"model {event.model_id} on {event.device} ({event.dtype}) "
                      f"in {event.seconds:.1f}s")
            self.post_message(self.ModelLoaded(event))
        elif isinstance(event, Notice):
            log.write(event.message)
            self.notice = event.message
        elif isinstance(event, Started):
            self.session_dir = event.session_dir
            log.write(f"session {event.session_dir}")
            self.progress.update(event)
            self.refresh_bindings()
        elif isinstance(event, Step):
            self.progress.update(event)
        elif isinstance(event, StepPreview):
            self._live_preview(event)
            return
        elif isinstance(event, FrameReady):
            self.progress.update(event)
            self._add_frame(event)
        elif isinstance(event, MediaWritten):
            for path in event.paths:
                log.write(f"wrote {path}")
            # visualize-diffusion's grid of all steps is a picture to look at too.
            self._add_frames(list(event.frames))
        elif isinstance(event, GenerationReady):
            self.generation = event
        elif isinstance(event, WaitingForChoice):
            self._ask(event)
        elif isinstance(event, (Finished, Interrupted, Failed)):
            self._finish(event)
            return
        self._show_progress()

    def _live_preview(self, event: StepPreview) -> None:
        """Keep the latest live picture; draw it now or at the next allowed moment."""
        self.live = event
        if self.live_due:
            return
        if self.LIVE_INTERVAL <= 0:
            self._draw_live()
        else:
            self.live_due = True
            self.set_timer(self.LIVE_INTERVAL, self._draw_live)

    def _draw_live(self) -> None:
        """The batch's current latents in the preview, while it follows the run and
        until the batch's frames are done (a finished frame beats its live picture)."""
        event, self.live, self.live_due = self.live, None, False
        if event is None or not self.following or not self.running:
            return
        if all(name in self._places for name in event.frames):
            return
        frames = count(len(event.frames), "frame")
        self.query_one("#preview", FramePreview).show_live(
            f"live · step {event.step}/{event.total} · {frames}", live_mosaic(event.images))

    def _add_frame(self, event: FrameReady) -> None:
        self._add_frames([*event.steps, (event.record, event.path)], event.image)

    def _add_frames(self, entries: list[tuple[FrameRecord, Path]], image: Any = None) -> None:
        """Add frames in story order; the preview shows the last of them while following.
        Frames mostly arrive in story order and are appended; one that belongs earlier
        (an outpaint filler after its keyframe) has the list rebuilt."""
        if not entries:
            return
        new = sorted((entry for entry in entries if entry[0].name not in self._places),
                     key=_story_key)
        strip = self.query_one("#frame-list", OptionList)
        if new and self.frames and _story_key(new[0]) < _story_key(self.frames[-1]):
            self.frames = sorted(self.frames + new, key=_story_key)
            self._places = {record.name: i for i, (record, _) in enumerate(self.frames)}
            strip.set_options([Option(plain(record.label)) for record, _ in self.frames])
        elif new:
            self._places.update((record.name, len(self.frames) + i) for i, (record, _) in enumerate(new))
            self.frames += new
            strip.add_options([Option(plain(record.label)) for record, _ in new])
        if self.following:
            self._show_frame(self.shown_index(entries[-1][0].name), image)
        elif self.shown is not None:
            strip.highlighted = self.shown

    def shown_index(self, name: str) -> int:
        return self._places[name]

    def _show_progress(self) -> None:
        progress = self.progress
        if self.stopping:
            status = "stopping…"
        elif self.waiting is not None:
            status = f"{progress.describe()} · waiting for your choice"
        else:
            status = progress.describe()
        self.query_one("#run-status", Static).update(status)
        frames_bar = self.query_one("#frames-bar", ProgressBar)
        if progress.frames_planned is not None:
            frames_bar.update(total=progress.frames_planned, progress=progress.frames_done)
        elif self.waiting is not None or not self.running:
            # Diffevolution has no planned total: while it waits, and once it is
            # over, every frame asked for is done; it only pulses while rendering.
            frames_bar.update(total=max(1, progress.frames_done), progress=progress.frames_done)
        else:
            frames_bar.update(total=None)
        if progress.steps_total:
            self.query_one("#steps-bar", ProgressBar).update(
                total=progress.steps_total, progress=progress.step)

    def _finish(self, event: Finished | Interrupted | Failed) -> None:
        self.final = event
        log = self.query_one("#run-log", RichLog)
        status = self.query_one("#run-status", Static)
        self.waiting = None
        self._show_progress()
        if isinstance(event, Finished):
            # Said in the status line, not a toast: a toast would cover the log's last lines.
            status.update(f"done: {count(event.frames_done, 'frame')} · esc: back")
            status.add_class("-done")
            log.write(f"done: {count(event.frames_done, 'frame')} in {event.session_dir}")
            for path in event.outputs:
                log.write(f"output {path}")
        elif isinstance(event, Interrupted):
            status.update(f"stopped after {count(event.frames_done, 'frame')} · "
                          "resumable from Sessions")
            log.write(f"stopped; resume it from the sessions browser or with "
                      f"`lse resume {event.session_dir}`")
        else:
            if event.bad_input and event.session_dir is None:
                # Nothing was written: back to the form, which shows it at its field.
                self.dismiss(BadInput(event.message, key=event.key))
                return
            status.update(plain(f"failed: {event.message}"))
            status.add_class("-failed")
            log.write(f"failed: {event.message}")
        self.refresh_bindings()

    # frames -------------------------------------------------------------------
    def _show_frame(self, index: int, image: Any = None) -> None:
        record, path = self.frames[index]
        self.shown_name = record.name
        self.query_one("#preview", FramePreview).show(record.label, path, image)
        strip = self.query_one("#frame-list", OptionList)
        if strip.highlighted != index:
            strip.highlighted = index

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        # The view moves the strip itself as frames arrive; a highlight message
        # that is no longer the strip's position is one of those, arriving late.
        strip = event.option_list
        if strip.id == "frame-list" and event.option_index == strip.highlighted != self.shown:
            self._choose_frame(event.option_index)

    def _choose_frame(self, index: int) -> None:
        """The user moved: follow new frames again only from the end of the story."""
        self.following = index == len(self.frames) - 1
        self._show_frame(index)

    def action_step_frame(self, delta: int) -> None:
        if not self.frames:
            return
        current = len(self.frames) - 1 if self.shown is None else self.shown
        self._choose_frame(max(0, min(len(self.frames) - 1, current + delta)))

    def action_zoom(self) -> None:
        if self.shown is None:
            return
        self.app.push_screen(FrameViewer([(r.label, path) for r, path in self.frames], self.shown,
                                         self.graphics, self.title_text), self._choose_frame)

    # diffevolution ------------------------------------------------------------
    def _ask(self, event: WaitingForChoice) -> None:
        assert self.generation is not None, "the core shows a generation before asking about it"
        # The core asks about the same generation again only when it rejected the
        # answer, and its notice just before says why.
        rejected = self.asked is not None and self.asked.generation == event.generation
        self.asked = self.waiting = event
        self.problem = self.notice if rejected else None
        self.query_one("#run-log", RichLog).write(f"generation {event.generation}: "
                                                  "choose in the grid")
        self.action_open_grid()

    def action_open_grid(self) -> None:
        if self.waiting is None or self.grid_open or self.generation is None:
            return
        self.grid_open = True
        self.refresh_bindings()
        self.app.push_screen(EvolutionScreen(self.generation, self.waiting, self.graphics,
                                             self.problem), self._answer)

    def _answer(self, choice: Choice | None) -> None:
        """The grid's answer; None: it was left with esc, and the run keeps waiting."""
        self.grid_open = False
        self.refresh_bindings()
        log = self.query_one("#run-log", RichLog)
        if choice is None:
            if self.waiting is not None:
                log.write("the run waits for your choice: g opens the grid, q stops (resumable)")
            return
        self.waiting = self.notice = self.problem = None
        self.run.choose(choice)
        log.write(f"> {describe(choice)}")
        self._show_progress()

    # user actions -------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "stop":
            return self.running and not self.stopping
        if action == "open_grid":
            return self.running and self.waiting is not None and not self.grid_open
        if action == "zoom":
            return bool(self.frames)
        if action == "back":
            return not self.running
        if action == "copy_path":
            return self.session_dir is not None
        return True

    def action_stop(self) -> None:
        if self.running and not self.stopping:
            self.stopping = True
            self.run.cancel()
            self._show_progress()
            self.refresh_bindings()

    def action_copy_path(self) -> None:
        if self.session_dir is not None:
            path = str(self.session_dir.resolve())  # pasted anywhere, not only here
            self.app.copy_to_clipboard(path)  # OSC 52 to the terminal
            self._copy_path_to_tmux(path)

    @work(thread=True, group="copy")
    def _copy_path_to_tmux(self, path: str) -> None:
        tried = in_tmux()
        problem = to_tmux_buffer(path) if tried else None
        self.app.call_from_thread(self.notify,
                                  f"{printable(path)}\n{where_it_went(tried, problem)}",
                                  title="Session path copied", markup=False,
                                  severity="warning" if problem else "information")

    def action_back(self) -> None:
        if not self.running:
            self.dismiss(None)


def _story_key(entry: tuple[FrameRecord, Path]) -> tuple[int, str]:
    return entry[0].position, entry[0].name
