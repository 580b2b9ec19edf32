"""Helpers the TUI tests share (kept in a test_tui module, next to the tests that use them)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Callable

from textual import events
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, TextArea

from lse_core.events import Event, Interrupted
from screens.app import LseApp, create_app


def make_app(sessions: Path, graphics: str = "halfcell") -> LseApp:
    return create_app(model="tiny", graphics=graphics, sessions_dir=sessions)


async def wait_until(pilot: Pilot, done: Callable[[], bool], what: str,
                     timeout: float = 60.0) -> None:
    """Let the app run until ``done()``; the timeout only guards against a hang."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.02)


async def type_into(pilot: Pilot, selector: str, text: str) -> None:
    """Focus a field, clear it and enter ``text``: typed key by key when short,
    pasted when long (the pilot spends tens of milliseconds on every key)."""
    widget = pilot.app.screen.query_one(selector)
    widget.focus()
    await pilot.pause()
    if isinstance(widget, TextArea):
        await pilot.press("f7", "backspace")  # select all, delete
    else:
        assert isinstance(widget, Input)
        await pilot.press("end", "ctrl+u")
    if len(text) > 4:
        pilot.app.post_message(events.Paste(text))  # as the terminal sends it
        await pilot.pause()
    else:
        await pilot.press(*["enter" if c == "\n" else c for c in text])


def send_key(app: LseApp, key: str) -> None:
    """Deliver a key the way the terminal driver does, without waiting for the app.

    ``Pilot.press`` waits (up to seconds) for the process to be idle, which it is
    not while the core renders, so keys that start or steer a run go in here and
    the test waits for their effect.
    """
    app.post_message(events.Key(key, key if len(key) == 1 else None))


def browser_ready(app: LseApp) -> bool:
    """The sessions browser is on screen with its sessions listed and the selected
    session's frames listed (thread workers list both)."""
    from screens.sessions import SessionsScreen

    screen = app.screen
    return (isinstance(screen, SessionsScreen) and screen.listed
            and screen.frames_of == screen.selected_path)


async def open_browser(pilot: Pilot) -> None:
    """From home: ``s``, then wait until the browser has listed everything."""
    await pilot.press("s")
    await wait_until(pilot, lambda: browser_ready(pilot.app), "the sessions browser's listing")


def table_measured(table: DataTable, rows: int) -> bool:
    """``table`` holds ``rows`` rows and has sized its columns to them (on its next idle)."""
    return table.row_count == rows and all(c.content_width for c in table.columns.values())


def preview_decoded(app: LseApp, selector: str) -> bool:
    """The preview ``selector`` of the current screen shows its frame's picture."""
    from screens.preview import FramePreview

    matches = app.screen.query(selector)
    return bool(matches) and not matches.first(FramePreview).pending


async def run_to_end(pilot: Pilot) -> None:
    await wait_until(pilot, lambda: type(pilot.app.screen).__name__ == "RunScreen", "the run view")
    await wait_until(pilot, lambda: not pilot.app.screen.running, "the run to end")


async def start_slow_single_inference(pilot: Pilot, images: int, steps: int,
                                      frames_before: int) -> None:
    """From home: 128x128 frames rendered one at a time, so a run lasts long enough
    for keys to arrive mid-run; returns once ``frames_before`` frames are done."""
    app = pilot.app
    await pilot.press("enter")
    await type_into(pilot, "#edit-prompt", "a fox")
    await type_into(pilot, "#edit-height", "128")
    await type_into(pilot, "#edit-width", "128")
    await type_into(pilot, "#edit-diffusion_steps", str(steps))
    await type_into(pilot, "#edit-images_per_prompt", str(images))
    app.screen.query_one("#advanced").collapsed = False
    await type_into(pilot, "#edit-batch_size", "1")
    send_key(app, "ctrl+r")
    await wait_until(pilot, lambda: type(app.screen).__name__ == "RunScreen"
                     and len(app.screen.frames) >= frames_before, f"{frames_before} frames")


def grid_ready(app: LseApp, generation: int) -> bool:
    """The diffevolution grid of ``generation`` is on screen with every gene's tile mounted
    (the screen becomes current before its tiles are composed) and every picture decoded."""
    from screens.evolution import EvolutionScreen, GeneTile

    screen = app.screen
    if not isinstance(screen, EvolutionScreen) or screen.waiting.generation != generation:
        return False
    tiles = screen.query(GeneTile)
    return (len(tiles) == len(screen.ready.names) and all(tile.is_mounted for tile in tiles)
            and screen.decoded)


def steady_cursors(app: LseApp) -> None:
    """Stop text cursors blinking, so a snapshot does not depend on when it is taken."""
    for editor in app.screen.query("Input, TextArea"):
        editor.cursor_blink = False


def manifest(session: Path) -> dict:
    return json.loads((session / "session.json").read_text())


class ScriptedRun:
    """Stands in for ``ExperimentRun`` with fixed events, stopping mid-run until cancelled."""

    def __init__(self, script: list[Event]) -> None:
        self.script = script
        self.cancelled = False
        self.choices: list[object] = []

    async def events(self):
        for event in self.script:
            yield event
        while not self.cancelled:
            await asyncio.sleep(0.01)
        yield Interrupted(None, 2)

    def cancel(self) -> None:
        self.cancelled = True

    def choose(self, action: object) -> None:
        self.choices.append(action)
