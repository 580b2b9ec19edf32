"""Headless answers to diffevolution: typed at the console, piped in, scripted, or automatic."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from dataclasses import replace
from pathlib import Path
from typing import Callable

from .errors import BadInput, printable, shown_path
from .events import WaitingForChoice
from .choices import Choice, parse_choice
from .config import MAX_TEXT

# The longest answer line: a prompt of MAX_TEXT characters (up to 4 bytes each in
# UTF-8) and the gene and auto fields around it.
MAX_ANSWER_BYTES = 4 * MAX_TEXT + 100
# An --actions file holds one short line per generation.
MAX_ACTIONS_BYTES = 10_000_000


class ScriptedAnswers:
    """Answers known up front (``--actions FILE``, ``--auto N``).

    The last one finishes the run once its picks are made, so no generation is
    rendered that no answer chooses from; a finished session can be continued later.
    """

    interactive = False

    def __init__(self, choices: list[Choice]) -> None:
        if choices:
            choices = [*choices[:-1], replace(choices[-1], finish=True)]
        self.choices = choices

    @classmethod
    def from_file(cls, path: Path, genes: int) -> "ScriptedAnswers":
        try:
            with open(path, "rb") as handle:  # bounded: `--actions /dev/zero` ends
                data = handle.read(MAX_ACTIONS_BYTES + 1)
            if len(data) > MAX_ACTIONS_BYTES:
                raise BadInput(f"--actions: {shown_path(path)}: larger than "
                               f"{MAX_ACTIONS_BYTES // 10**6} MB, so not a file of answers")
            lines = data.decode("utf-8").splitlines()
        except UnicodeDecodeError:
            raise BadInput(f"--actions: {shown_path(path)}: not UTF-8 text") from None
        except OSError as exc:
            raise BadInput(f"--actions: {shown_path(path)}: cannot read "
                           f"({exc.__class__.__name__})") from None
        choices = []
        for number, line in enumerate(lines, start=1):
            try:
                choice = parse_choice(line, genes)
            except ValueError as exc:
                raise BadInput(f"--actions: {shown_path(path)} line {number}: {exc}") from None
            if choice.end:  # a script ends after its last answer anyway
                break
            choices.append(choice)
        return cls(choices)

    @classmethod
    def auto(cls, generations: int) -> "ScriptedAnswers":
        if generations < 1:
            raise BadInput("--auto: must be at least 1")
        return cls([Choice(auto=generations)])

    async def next(self, event: WaitingForChoice) -> Choice:
        return self.choices.pop(0) if self.choices else Choice(end=True)


class StreamAnswers:
    """Answers piped in on stdin (``printf '2;;\\nexit\\n' | lse run …``), one line per
    generation, read as each generation is ready; the end of input finishes the run."""

    interactive = False

    def __init__(self, fd: int | None, say: Callable[[str], None] = print) -> None:
        self.fd = fd
        self.pending = b""
        self.say = lambda text: say(printable(text))  # the lines echo what was piped in
        self.lines = 0
        self.answered: set[int] = set()  # generations; a rejected answer is asked again

    async def next(self, event: WaitingForChoice) -> Choice:
        while True:
            line = await _in_thread(self._read_line)
            if line is None:
                self.say(self._ended())
                return Choice(end=True)
            try:
                choice = parse_choice(line, event.genes)
            except ValueError as exc:
                self.say(f"stdin line {self.lines}: {exc}; reading the next line")
                continue
            self.answered.add(event.generation)
            self.say(f"generation {event.generation}: {line.strip() or '(re-roll)'}")
            return choice

    def _read_line(self) -> str | None:
        while True:
            raw = self._next_bytes()
            if raw is None:
                return None
            self.lines += 1
            try:
                return raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError:
                self.say(f"stdin line {self.lines}: not UTF-8 text; reading the next line")

    def _next_bytes(self) -> bytes | None:
        # Raw reads on the descriptor: a thread blocked in sys.stdin's buffered reader
        # holds its lock, and the interpreter aborts at exit (Ctrl-C, SIGTERM) waiting for it.
        while b"\n" not in self.pending:
            if len(self.pending) > MAX_ANSWER_BYTES:
                # Not an answer (`< /dev/zero`, a binary file): no line will ever end.
                self.fd, self.pending = None, b""
                self.lines += 1
                self.say(f"stdin line {self.lines}: longer than {MAX_ANSWER_BYTES} bytes, "
                         "so not an answer; no more lines are read")
                return None
            chunk = os.read(self.fd, 4096) if self.fd is not None else b""
            if not chunk:
                line, self.pending = self.pending, b""
                return line or None
            self.pending += chunk
        line, _, self.pending = self.pending.partition(b"\n")
        return line

    def _ended(self) -> str:
        if self.lines == 0:
            return ("no answers on stdin (it is empty or closed): finishing; pipe answers in, "
                    "or give --auto N or --actions FILE")
        count = len(self.answered)
        return f"stdin ended after answering {count} generation{'' if count == 1 else 's'}: finishing"


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
            line = await _in_thread(lambda: _input(f"generation {event.generation}> "))
            if line is None:  # end of input (Ctrl-D)
                return Choice(end=True)
            try:
                return parse_choice(line, event.genes)
            except ValueError as exc:
                print(f"  {exc}")


def _input(prompt: str) -> str | None:
    try:
        return input(prompt)
    except EOFError:
        return None


async def _in_thread(read: Callable[[], str | None]) -> str | None:
    """A blocking read on a daemon thread: Ctrl-C must not wait for a line that never
    comes, and ``asyncio.run`` would wait for an executor thread at exit."""
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[str | None] = loop.create_future()

    def deliver(line: str | None) -> None:
        if not answer.done():
            answer.set_result(line)

    def fail(exc: BaseException) -> None:
        if not answer.done():
            answer.set_exception(exc)

    def run() -> None:
        try:
            line = read()
        except Exception as exc:  # raised where the answer is awaited (e.g. a closed stdout)
            loop.call_soon_threadsafe(fail, exc)
            return
        loop.call_soon_threadsafe(deliver, line)

    threading.Thread(target=run, name="lse-answers", daemon=True).start()
    return await answer


def answers_from_stdin() -> "ConsoleAnswers | StreamAnswers":
    """The console prompt on a terminal; otherwise the lines piped in (or none at all)."""
    stdin = sys.stdin
    if stdin is not None and stdin.isatty():
        return ConsoleAnswers()
    try:
        fd = stdin.fileno() if stdin is not None else None
    except (OSError, ValueError):  # closed, or not a real file
        fd = None
    return StreamAnswers(fd)
