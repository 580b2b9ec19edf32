"""The run view: live progress, the latest frame inline, a strip of finished frames.

It only renders the core's events and forwards the user's keys (stop, and the
diffevolution grid's answers); the work itself runs in the core's thread.
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
    WaitingForChoice,
)
from lse_core.choices import Choice

from .evolution import EvolutionScreen, describe
from .preview import FramePreview
from .run_progress import RunProgress
from .texts import count


class RunLike(Protocol):
    """What the view needs of a run: ``lse_core.run.ExperimentRun`` has it."""

    def events(self) -> AsyncIterator[Event]: ...

    def cancel(self) -> None: ...

    def choose(self, action: Any) -> None: ...


class RunScreen(Screen[str | None]):
    """Dismissed with the message of a bad input found before any session existed,
    so the form can show it at its field; otherwise with None."""

    CSS_PATH = "run_view.tcss"

    class ModelLoaded(Message):
        """Tells the app which model, device and dtype are in use (its status line)."""

        def __init__(self, loaded: Loaded) -> None:
            super().__init__()
            self.loaded = loaded

    BINDINGS = [
        Binding("q", "stop", "Stop (resumable)", id="run.stop"),
        Binding("left,h", "step_frame(-1)", "Prev frame", key_display="←", id="run.prev"),
        Binding("right,l", "step_frame(1)", "Next frame", key_display="→", id="run.next"),
        Binding("y", "copy_path", "Copy session path", id="run.copy"),
        Binding("escape", "back", "Back", id="run.back"),
    ]

    def __init__(self, run: RunLike, title: str, graphics: str,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.run = run
        self.title_text = title
        self.graphics = graphics
        self.progress = RunProgress(clock=clock)
        self.frames: list[tuple[str, Path]] = []
        self.shown: int | None = None
        self.session_dir: Path | None = None
        self.final: Event | None = None
        self.stopping = False
        # Diffevolution: the generation on screen, the last question, the last notice.
        self.generation: GenerationReady | None = None
        self.asked: WaitingForChoice | None = None
        self.notice: str | None = None

    @property
    def running(self) -> bool:
        return self.final is None

    def compose(self) -> ComposeResult:
        yield Label(self.title_text, id="run-title")
        yield Static("loading model…", id="run-status")
        with Horizontal(id="bars"):
            yield Label("frames", classes="bar-label")
            yield ProgressBar(id="frames-bar", show_eta=False)
            yield Label("steps", classes="bar-label")
            yield ProgressBar(id="steps-bar", show_eta=False)
        with Horizontal(id="run-main"):
            yield FramePreview(self.graphics, id="preview")
            with Vertical(id="strip"):
                yield Label("frames (←/→)", classes="strip-title")
                yield OptionList(id="frame-list")
        yield RichLog(id="run-log", wrap=True, markup=False)
        yield Footer()

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
        elif isinstance(event, FrameReady):
            self.progress.update(event)
            self._add_frame(event)
        elif isinstance(event, MediaWritten):
            for path in event.paths:
                log.write(f"wrote {path}")
        elif isinstance(event, GenerationReady):
            self.generation = event
        elif isinstance(event, WaitingForChoice):
            self._ask(event)
        elif isinstance(event, (Finished, Interrupted, Failed)):
            self._finish(event)
            return
        self._show_progress()

    def _add_frame(self, event: FrameReady) -> None:
        follow = self.shown is None or self.shown == len(self.frames) - 1
        self.frames.append((event.name, event.path))
        strip = self.query_one("#frame-list", OptionList)
        strip.add_option(Option(event.name))
        if follow:
            self._show_frame(len(self.frames) - 1, event.image)

    def _show_progress(self) -> None:
        progress = self.progress
        status = "stopping…" if self.stopping else progress.describe()
        self.query_one("#run-status", Static).update(status)
        if progress.frames_planned is not None:
            self.query_one("#frames-bar", ProgressBar).update(
                total=progress.frames_planned, progress=progress.frames_done)
        if progress.steps_total:
            self.query_one("#steps-bar", ProgressBar).update(
                total=progress.steps_total, progress=progress.step)

    def _finish(self, event: Finished | Interrupted | Failed) -> None:
        self.final = event
        log = self.query_one("#run-log", RichLog)
        status = self.query_one("#run-status", Static)
        if isinstance(event, Finished):
            status.update(f"done: {count(event.frames_done, 'frame')} · esc: back")
            log.write(f"done: {count(event.frames_done, 'frame')} in {event.session_dir}")
            for path in event.outputs:
                log.write(f"output {path}")
            self.notify(f"Saved in {event.session_dir}", title="Run finished")
        elif isinstance(event, Interrupted):
            status.update(f"stopped after {count(event.frames_done, 'frame')} · "
                          "resumable from Sessions")
            log.write(f"stopped; resume it from the sessions browser or with "
                      f"`lse resume {event.session_dir}`")
        else:
            if event.bad_input and event.session_dir is None:
                # Nothing was written: back to the form, which shows it at its field.
                self.dismiss(event.message)
                return
            status.update(f"failed: {event.message}")
            status.add_class("-failed")
            log.write(f"failed: {event.message}")
        self.refresh_bindings()

    # frames -------------------------------------------------------------------
    def _show_frame(self, index: int, image: Any = None) -> None:
        self.shown = index
        name, path = self.frames[index]
        self.query_one("#preview", FramePreview).show(name, path, image)
        strip = self.query_one("#frame-list", OptionList)
        if strip.highlighted != index:
            strip.highlighted = index

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        # The view moves the strip itself as frames arrive; a highlight message
        # that is no longer the strip's position is one of those, arriving late.
        strip = event.option_list
        if strip.id == "frame-list" and event.option_index == strip.highlighted != self.shown:
            self._show_frame(event.option_index)

    def action_step_frame(self, delta: int) -> None:
        if not self.frames:
            return
        current = len(self.frames) - 1 if self.shown is None else self.shown
        self._show_frame(max(0, min(len(self.frames) - 1, current + delta)))

    # diffevolution ------------------------------------------------------------
    def _ask(self, event: WaitingForChoice) -> None:
        assert self.generation is not None, "the core shows a generation before asking about it"
        # The core asks about the same generation again only when it rejected the
        # answer, and its notice just before says why.
        rejected = self.asked is not None and self.asked.generation == event.generation
        self.asked = event
        self.query_one("#run-log", RichLog).write(f"generation {event.generation}: "
                                                  "choose in the grid")
        self.app.push_screen(EvolutionScreen(self.generation, event, self.graphics,
                                             self.notice if rejected else None), self._answer)

    def _answer(self, choice: Choice | None) -> None:
        assert choice is not None, "the grid is always dismissed with a choice"
        self.notice = None
        self.run.choose(choice)
        self.query_one("#run-log", RichLog).write(f"> {describe(choice)}")

    # user actions -------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "stop":
            return self.running and not self.stopping
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
            self.app.copy_to_clipboard(str(self.session_dir))
            self.notify(str(self.session_dir), title="Session path copied")

    def action_back(self) -> None:
        if not self.running:
            self.dismiss(None)
