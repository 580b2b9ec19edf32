"""The experiment form: every config key of one experiment, validated like the CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.events import DescendantFocus
from textual.widgets import Collapsible, Footer, Input, Label, Select, Static, Switch, TextArea

from lse_core.config import ExperimentConfig, build_config
from lse_core.errors import BadInput
from lse_core.session import atomic_write_text

from .base import KeysBeforeFocus, LseScreen
from .dialogs import EMBEDDING_SUFFIXES, IMAGE_SUFFIXES, YAML_SUFFIXES, PathDialog
from .fields import SCREEN_KEYS, format_value, parse_value, sections_for
from .form_fields import FieldRow
from .texts import DESCRIPTIONS, plain

SOURCE = "form"
IMAGE_KEYS = ("image", "mask")


def experiment_yaml(cfg: ExperimentConfig, keys: list[str]) -> str:
    """The config as YAML with only ``keys`` (and the kind and experiment), unset ones left out."""
    data = cfg.model_dump(include={*SCREEN_KEYS, *keys}, exclude_none=True)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


class ExperimentForm(KeysBeforeFocus, LseScreen[None]):
    """The keys one experiment reads, and nothing else: keys of another
    experiment in a loaded YAML are neither run nor saved.

    Errors are checked on Ctrl+R/Ctrl+S; from the first check on, every edit
    checks again, so a message disappears as soon as its value is fixed.
    """

    CSS_PATH = "form.tcss"
    HELP_TITLE = "Experiment form"
    WIDGET_KEYS = (("tab shift+tab", "Next / previous field"),
                   ("space ⏎", "Turn a switch on or off; open a list"),
                   ("f1", "These keys, while typing in a field (? types a ?)"))
    BINDINGS = [
        # Priority: the app moves the focus as it reads the key, before it hands on the
        # next one. Otherwise the field being left receives the tab in its own queue and
        # passes it up only after the keys typed behind it, which it keeps (issue 18.3).
        Binding("tab", "app.focus_next", "Next field", show=False, priority=True,
                id="form.next"),
        Binding("shift+tab", "app.focus_previous", "Previous field", show=False,
                priority=True, id="form.previous"),
        Binding("ctrl+r", "run", "Run", id="form.run"),
        Binding("ctrl+o", "pick_file", "Pick file", id="form.pick"),
        Binding("ctrl+l", "load", "Load YAML", id="form.load"),
        Binding("ctrl+s", "save", "Save YAML", id="form.save"),
        Binding("escape", "back", "Back", id="form.back"),
    ]

    def __init__(self, kind: str, experiment: str, values: dict[str, Any] | None = None,
                 check_now: bool = False) -> None:
        super().__init__()
        self.kind = kind
        self.experiment = experiment
        self.values = dict(values or {})
        self.check_now = check_now
        self.sections = sections_for(kind, experiment)
        self.checking = False  # set by the first check; edits check again from then on

    def compose(self) -> ComposeResult:
        yield Label(f"{self.experiment} · {self.kind}", id="form-title")
        yield Static(DESCRIPTIONS.get(self.experiment, ""), id="form-description")
        yield Static("", id="form-error")
        with VerticalScroll(id="form"):
            for name, specs in self.sections:
                rows = [FieldRow(spec, format_value(spec, self.values.get(spec.key)))
                        for spec in specs]
                if name == "Advanced":
                    yield Collapsible(*rows, title=name, collapsed=True, id="advanced")
                else:
                    yield Label(name, classes="section")
                    yield from rows
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(FieldRow).editor.focus()
        if self.check_now:
            self.validate()

    @property
    def rows(self) -> dict[str, FieldRow]:
        return {row.spec.key: row for row in self.query(FieldRow)}

    # values -------------------------------------------------------------------
    def collect(self) -> dict[str, Any]:
        """The config as the form holds it; empty fields stay unset (their default)."""
        data: dict[str, Any] = {"model_identifier": self.kind, "exp_identifier": self.experiment}
        for key, row in self.rows.items():
            value = parse_value(row.spec, row.get_text())
            if value is not None and value != row.spec.default:
                data[key] = value
        return data

    def check(self) -> tuple[ExperimentConfig | None, BadInput | None]:
        """The form's config, or what is wrong with it."""
        try:
            cfg = build_config(self.collect(), source=SOURCE)
        except BadInput as exc:
            return None, BadInput(str(exc).removeprefix(f"{SOURCE}: "), key=exc.key)
        return cfg, None

    def validate(self) -> ExperimentConfig | None:
        """The form's config, or None after showing why at the offending field."""
        self.checking = True
        cfg, problem = self.check()
        self.show_error(problem)
        return cfg

    @on(Input.Changed)
    @on(TextArea.Changed)
    @on(Switch.Changed)
    @on(Select.Changed)
    def recheck(self) -> None:
        """After a check, each edit checks again without moving the cursor."""
        if self.checking:
            self.show_error(self.check()[1], focus=False)

    def show_error(self, problem: BadInput | str | None, focus: bool = True) -> None:
        """Show a problem at the field of its key (else, or for a plain message, above the
        form); None clears all.

        ``focus`` moves the cursor to that field (on Ctrl+R), not while typing elsewhere.
        """
        for row in self.rows.values():
            row.show_error(None)
        banner = self.query_one("#form-error", Static)
        message = str(problem) if problem else None
        row = self.rows.get(getattr(problem, "key", None) or "")
        banner.update(plain(message) if message and row is None else "")
        banner.set_class(bool(message) and row is None, "-shown")
        if not message or row is None:
            return
        row.show_error(message)
        if not focus:
            return
        for collapsible in row.ancestors_with_self:
            if isinstance(collapsible, Collapsible):
                collapsible.collapsed = False
        row.editor.focus()
        # After the message is laid out, so the whole of it is scrolled into view.
        self.call_after_refresh(self.query_one("#form", VerticalScroll).scroll_to_widget, row,
                                animate=False)

    # actions ------------------------------------------------------------------
    def action_run(self) -> None:
        cfg = self.validate()
        if cfg is not None:
            self.lse.start_run(cfg, on_bad_input=self.show_error)

    def action_save(self) -> None:
        cfg = self.validate()
        if cfg is None:
            return

        def save(path: Path | None) -> None:
            if path is None:
                return
            try:
                atomic_write_text(path, experiment_yaml(cfg, list(self.rows)))
            except OSError as exc:
                self.show_error(f"{path}: cannot write ({exc.strerror})")
                return
            self.notify(str(path), title="Config saved")

        self.app.push_screen(PathDialog("Save the form as YAML", YAML_SUFFIXES,
                                        start=f"{self.kind}_{self.experiment}.yaml"), save)

    def action_load(self) -> None:
        self.lse.load_config_into_form(replace=True, on_error=self.show_error)

    def _file_row(self) -> FieldRow | None:
        focused = self.focused
        if focused is None:
            return None
        row = next((n for n in focused.ancestors_with_self if isinstance(n, FieldRow)), None)
        return row if row is not None and row.picks_files else None

    def action_pick_file(self) -> None:
        row = self._file_row()
        if row is None:
            self.notify("Move to a file field (image, mask, embeddings) first.")
            return
        suffixes = IMAGE_SUFFIXES if row.spec.key in IMAGE_KEYS else EMBEDDING_SUFFIXES
        self.app.push_screen(
            PathDialog(f"Pick a file for {row.spec.key}", suffixes, start=""),
            lambda path: row.add_path(str(path)) if path is not None else None)

    def on_descendant_focus(self, event: DescendantFocus) -> None:
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "pick_file":
            return self._file_row() is not None or None
        return True

    def action_back(self) -> None:
        self.dismiss(None)

