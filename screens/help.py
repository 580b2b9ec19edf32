"""The keys help (``?`` or F1): every key of the screen below it, from its bindings.

Keys that a widget handles itself (arrows in a list, tab between fields) are
not bindings of the screen; a screen names them in ``WIDGET_KEYS``.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.table import Table
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Label, Static


@dataclass(frozen=True)
class KeyRow:
    keys: str
    description: str
    available: bool  # False: the key does nothing in the screen's present state


def _own_bindings(bindings: list[BindingType]) -> list[Binding]:
    return [b for b in Binding.make_bindings(bindings) if b.description and not b.system]


def key_rows(screen: Screen, app: App) -> list[KeyRow]:
    """The screen's keys, then the app's, one row per description (keys of a row joined)."""
    active = screen.active_bindings
    rows: dict[str, tuple[list[str], bool]] = {}
    for binding in [*_own_bindings(type(screen).BINDINGS), *_own_bindings(type(app).BINDINGS)]:
        now = active.get(binding.key)
        available = now is not None and now.enabled and now.binding.action == binding.action
        # A binding's tooltip, where it has one, says more than its footer word.
        description = binding.tooltip or binding.description
        keys, was_available = rows.get(description, ([], False))
        display = app.get_key_display(binding)
        if display not in keys:
            keys.append(display)
        rows[description] = (keys, was_available or available)
    result = [KeyRow(" ".join(keys), description, available)
              for description, (keys, available) in rows.items()]
    result += [KeyRow(keys, description, True)
               for keys, description in getattr(screen, "WIDGET_KEYS", ())]
    result.append(KeyRow(app.get_key_display(Binding(app.COMMAND_PALETTE_BINDING, "")),
                         "Command palette: every action by name", True))
    return result


class KeysScreen(ModalScreen[None]):
    """A table of keys; any of esc, q, ? or F1 closes it."""

    CSS_PATH = "dialogs.tcss"
    BINDINGS = [Binding("escape,q,question_mark,f1", "close", "Close", id="keys.close")]

    def __init__(self, title: str, rows: list[KeyRow]) -> None:
        super().__init__()
        self.title_text = title
        self.rows = rows

    def compose(self) -> ComposeResult:
        # A table that wraps long descriptions, rather than cutting them at 80 columns.
        table = Table(box=None, show_header=False, padding=(0, 2, 0, 0), expand=True)
        table.add_column("key", no_wrap=True, style="bold")
        table.add_column("what it does", ratio=1)
        for row in self.rows:
            style = "" if row.available else "dim"
            table.add_row(row.keys, row.description, style=style)
        with Vertical(id="dialog"):
            yield Label(f"Keys · {self.title_text}", id="dialog-title")
            with VerticalScroll(id="keys"):
                yield Static(table)
            yield Label("dim: not available right now · esc: close", classes="dialog-help")

    def action_close(self) -> None:
        self.dismiss(None)
