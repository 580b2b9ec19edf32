"""Small modal dialogs: pick or type a file path, pick one of a few choices, type a line,
confirm a step that cannot be undone."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Callable, Iterable

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.suggester import Suggester
from textual.widgets import DirectoryTree, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from .base import KeysBeforeFocus
from .texts import plain

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
EMBEDDING_SUFFIXES = (".safetensors", ".pt")
YAML_SUFFIXES = (".yaml", ".yml")


class FileTree(DirectoryTree):
    """A directory tree showing folders and only the files a dialog can use."""

    def __init__(self, path: Path, suffixes: tuple[str, ...]) -> None:
        super().__init__(path, id="tree")
        self.suffixes = suffixes

    def filter_paths(self, paths: Iterable[Path]) -> Iterable[Path]:
        return [p for p in paths if usable(p, self.suffixes)]


def usable(path: Path, suffixes: tuple[str, ...]) -> bool:
    """A folder, or a file a dialog asking for ``suffixes`` can take (hidden ones left out)."""
    return not path.name.startswith(".") and (path.is_dir() or path.suffix.lower() in suffixes)


def complete_path(typed: str, suffixes: tuple[str, ...], root: Path) -> str | None:
    """``typed`` completed with the first folder or usable file whose name it starts,
    relative to ``root`` (a folder gets its ``/``, so typing goes on inside it)."""
    folder, start = typed.rpartition("/")[0::2]
    where = Path(folder or ".").expanduser()
    where = where if where.is_absolute() else root / where
    try:
        names = sorted(entry.name + ("/" if entry.is_dir() else "") for entry in where.iterdir()
                       if entry.name.startswith(start) and usable(entry, suffixes))
    except OSError:
        return None
    return typed + names[0][len(start):] if names and typed else None


class PathSuggester(Suggester):
    """Completes a typed path from the folder it names, as a shell's tab does: → takes it."""

    def __init__(self, suffixes: tuple[str, ...], root: Path) -> None:
        super().__init__(use_cache=False, case_sensitive=True)
        self.suffixes = suffixes
        self.root = root

    async def get_suggestion(self, value: str) -> str | None:
        # Reading a folder can wait on a slow disk: not on the UI thread.
        return await asyncio.to_thread(complete_path, value, self.suffixes, self.root)


class PathDialog(KeysBeforeFocus, ModalScreen[Path | None]):
    """Type a path (completed as typed, from the working folder), or walk the tree and
    press enter on a file."""

    CSS_PATH = "dialogs.tcss"
    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="dialog.cancel"),
        Binding("ctrl+t", "focus_tree", "Browse", id="dialog.browse"),
    ]

    def __init__(self, title: str, suffixes: tuple[str, ...], start: str = "",
                 root: Path | None = None) -> None:
        super().__init__()
        self.title_text = title
        self.suffixes = suffixes
        self.start = start
        self.root = root or Path.cwd()

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(plain(self.title_text), id="dialog-title")
            yield Input(self.start, placeholder="path, then enter", id="path",
                        suggester=PathSuggester(self.suffixes, self.root))
            yield FileTree(self.root, self.suffixes)
            yield Label("enter: choose · →: complete · ctrl+t: browse · esc: cancel",
                        classes="dialog-help")

    def on_mount(self) -> None:
        path = self.query_one("#path", Input)
        path.cursor_position = len(path.value)  # typing goes on from the suggested folder

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.value.strip():
            self.dismiss(Path(event.value.strip()).expanduser())

    def on_directory_tree_file_selected(self, event: DirectoryTree.FileSelected) -> None:
        event.stop()
        self.dismiss(_relative(event.path))

    def action_focus_tree(self) -> None:
        self.query_one(FileTree).focus()

    def action_cancel(self) -> None:
        self.dismiss(None)


class ChoiceDialog(KeysBeforeFocus, ModalScreen[str | None]):
    """Choose one of a few named options."""

    CSS_PATH = "dialogs.tcss"
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="dialog.cancel")]

    def __init__(self, title: str, choices: list[str], current: str | None = None) -> None:
        super().__init__()
        self.title_text = title
        self.choices = choices
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(plain(self.title_text), id="dialog-title")
            yield OptionList(*[Option(c, id=c) for c in self.choices], id="choices")

    def on_mount(self) -> None:
        if self.current in self.choices:
            self.query_one(OptionList).highlighted = self.choices.index(self.current)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)


class TextDialog(KeysBeforeFocus, ModalScreen[str | None]):
    """Type one line; ``check`` returns what is wrong with it (shown, the dialog stays) or None."""

    CSS_PATH = "dialogs.tcss"
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="dialog.cancel")]

    def __init__(self, title: str, help: str = "",
                 check: Callable[[str], str | None] = lambda text: None) -> None:
        super().__init__()
        self.title_text = title
        self.help = help
        self.check = check

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(plain(self.title_text), id="dialog-title")
            yield Input(placeholder="enter: ok · esc: cancel", id="text")
            # Static, not Label: a long help wraps instead of being cut at the dialog's edge.
            yield Static(self.help, classes="dialog-help")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        problem = self.check(event.value)
        if problem is None:
            self.dismiss(event.value)
        else:
            self.query_one(".dialog-help", Static).update(plain(problem))

    def action_cancel(self) -> None:
        self.dismiss(None)


class ConfirmDialog(ModalScreen[bool]):
    """Yes or no; only ``y`` or enter says yes, so a stray esc never does."""

    CSS_PATH = "dialogs.tcss"
    BINDINGS = [
        Binding("y,enter", "answer(True)", "Yes", id="confirm.yes"),
        Binding("n,escape", "answer(False)", "No", id="confirm.no"),
    ]

    def __init__(self, title: str, text: str, yes: str) -> None:
        super().__init__()
        self.title_text = title
        self.text = text
        self.yes = yes

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(plain(self.title_text), id="dialog-title")
            yield Static(self.text)
            yield Label(f"y/enter: {self.yes} · n/esc: cancel", classes="dialog-help")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


def _relative(path: Path) -> Path:
    """Paths under the working folder stay short in forms and saved configs."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return path
