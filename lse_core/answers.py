"""Headless answers to diffevolution: typed at the console, scripted, or automatic."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from .errors import BadInput
from .events import WaitingForChoice
from .experiments.diffevolution import Choice, parse_choice


class ScriptedAnswers:
    """Answers given up front; when they run out the run ends (and can be resumed later)."""

    interactive = False

    def __init__(self, choices: list[Choice]) -> None:
        self.choices = list(choices)

    @classmethod
    def from_file(cls, path: Path, genes: int) -> "ScriptedAnswers":
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise BadInput(f"--actions: {path}: cannot read ({exc.__class__.__name__})") from None
        choices = []
        for number, line in enumerate(lines, start=1):
            try:
                choices.append(parse_choice(line, genes))
            except ValueError as exc:
                raise BadInput(f"--actions: {path} line {number}: {exc}") from None
        return cls(choices)

    @classmethod
    def auto(cls, generations: int) -> "ScriptedAnswers":
        if generations < 1:
            raise BadInput("--auto: must be at least 1")
        return cls([Choice(auto=generations)])

    async def next(self, event: WaitingForChoice) -> Choice:
        return self.choices.pop(0) if self.choices else Choice(end=True)


class ConsoleAnswers:
    """The original tool's prompt: ``gene;auto_steps;prompt``, empty = re-roll, exit = finish."""

    interactive = True

    def __init__(self) -> None:
        self.helped = False

    async def next(self, event: WaitingForChoice) -> Choice:
        if not self.helped:
            print(event.help)
            self.helped = True
        while True:
            line = await _read_line(f"generation {event.generation}> ")
            if line is None:  # end of input (Ctrl-D)
                return Choice(end=True)
            try:
                return parse_choice(line, event.genes)
            except ValueError as exc:
                print(f"  {exc}")


async def _read_line(prompt: str) -> str | None:
    """``input()`` on a daemon thread: Ctrl-C must not wait for a line that never comes,
    and ``asyncio.run`` would wait for an executor thread at exit."""
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[str | None] = loop.create_future()

    def deliver(line: str | None) -> None:
        if not answer.done():
            answer.set_result(line)

    def read() -> None:
        try:
            line = input(prompt)
        except EOFError:
            line = None
        loop.call_soon_threadsafe(deliver, line)

    threading.Thread(target=read, name="lse-console", daemon=True).start()
    return await answer
