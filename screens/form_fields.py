"""Widgets that edit one config key each, with the key's inline error below it."""

from __future__ import annotations

from textual import events
from textual.app import ComposeResult
from textual.suggester import SuggestFromList
from textual.containers import Horizontal, Vertical
from textual.widget import Widget
from textual.widgets import Input, Label, Select, Static, Switch, TextArea

from lse_core.config import split_prompt

from .fields import PATH_LIST_KEYS, FieldSpec, field_message
from .texts import plain


def _local_models() -> SuggestFromList:
    """Completes model_id with the models that load from here (`lse models`)."""
    from lse_core.local_models import local_model_ids

    return SuggestFromList(local_model_ids(), case_sensitive=False)


def on_off(value: bool) -> str:
    return "on" if value else "off"


class KeysInOrder:
    """Mixed into an editor (before it): an editor that runs its own key bindings (backspace, arrows, delete …) as each
    key arrives, in the order typed.

    Textual inserts a printable key in the widget's ``_on_key`` but runs a bound key
    only once the key has bubbled back up to the app, behind any keys typed after
    it: typed fast (or with the app busy), ``ab⌫c`` became ``ab`` instead of ``ac``.
    """

    async def _on_key(self: Widget, event: events.Key) -> None:  # type: ignore[misc]
        for binding in self._bindings.key_to_bindings.get(event.key, ()):
            if not binding.priority and await self.app.run_action(binding.action, self):
                event.stop()
                event.prevent_default()  # the editor's own handler must not see it again
                return


class FieldInput(KeysInOrder, Input):
    """A one-line field whose keys are handled in the order they were typed."""


class FieldTextArea(KeysInOrder, TextArea):
    """A one-item-per-line field whose keys are handled in the order they were typed."""


class FieldSwitch(KeysInOrder, Switch):
    """An on/off field that turns with each space or enter as it arrives: run later, from
    the app, a space with a tab typed right behind it found the focus moved on and was lost."""


class FieldRow(Vertical):
    """One config key: its name, an editor, a hint and an inline error message."""

    def __init__(self, spec: FieldSpec, text: str) -> None:
        super().__init__(id=f"field-{spec.key}")
        self.spec = spec
        self._initial = text

    def compose(self) -> ComposeResult:
        spec = self.spec
        below = spec.kind in ("list", "path", "prompt")
        with Horizontal(classes="field-line"):
            yield Label(spec.key, classes="field-name")
            yield from self._editors()
            if spec.hint and not below:
                yield Static(spec.hint, classes="field-hint")
        hints = [spec.hint] if spec.hint and below else []
        if self.picks_files:
            hints.append("ctrl+o: pick a file")
        if hints:
            yield Static(" · ".join(hints), classes="field-hint -below")
        yield Static("", classes="field-error")

    def _editors(self) -> ComposeResult:
        spec, text, key = self.spec, self._initial, self.spec.key
        if spec.kind == "bool":
            # A key the values leave out is shown at its default (live_preview: on).
            value = text.lower() == "true" if text else bool(spec.default)
            # The switch's position and the word beside it both say on or off.
            yield FieldSwitch(value, animate=False, id=f"edit-{key}")
            yield Label(on_off(value), classes=f"switch-state -{on_off(value)}")
        elif spec.kind == "choice":
            value = text or spec.default
            # A value from a loaded YAML that is not a valid choice stays visible,
            # with its error below, rather than being replaced without a word.
            unknown = [] if value in spec.choices else [value]
            yield Select([(c, c) for c in (*spec.choices, *unknown)], value=value,
                         allow_blank=False, id=f"edit-{key}", compact=True)
        elif spec.kind == "list":
            yield FieldTextArea(text, id=f"edit-{key}", compact=True, soft_wrap=False,
                                classes="list-editor")
        elif spec.kind == "prompt":
            positive, negative = split_prompt(text)
            with Vertical(classes="prompt-pair"):
                yield FieldInput(positive,
                                 placeholder="prompt, e.g. a red circle on a white background",
                                 id=f"edit-{key}", compact=True)
                yield FieldInput(negative, placeholder="negative prompt (optional)",
                                 id="edit-negative", compact=True)
        else:
            yield FieldInput(text, placeholder=spec.placeholder, id=f"edit-{key}", compact=True,
                             suggester=_local_models() if key == "model_id" else None)

    @property
    def picks_files(self) -> bool:
        return self.spec.kind == "path" or self.spec.key in PATH_LIST_KEYS

    @property
    def editor(self) -> Widget:
        return self.query_one(f"#edit-{self.spec.key}")

    def get_text(self) -> str:
        editor = self.editor
        if isinstance(editor, Switch):
            return "true" if editor.value else "false"
        if isinstance(editor, Select):
            return str(editor.value)
        if isinstance(editor, TextArea):
            return editor.text
        if self.spec.kind == "prompt":
            negative = self.query_one("#edit-negative", Input).value
            return f"{editor.value}|{negative}" if negative else editor.value
        assert isinstance(editor, Input)
        return editor.value

    def add_path(self, path: str) -> None:
        """A picked file: replaces a path field, or is appended to a list."""
        editor = self.editor
        if isinstance(editor, TextArea):
            lines = [line for line in editor.text.splitlines() if line.strip()]
            editor.load_text("\n".join([*lines, path]))
        else:
            assert isinstance(editor, Input)
            editor.value = path

    def on_switch_changed(self, event: Switch.Changed) -> None:
        state = self.query_one(".switch-state", Label)
        state.update(on_off(event.value))
        state.set_class(event.value, "-on")
        state.set_class(not event.value, "-off")

    def show_error(self, message: str | None) -> None:
        error = self.query_one(".field-error", Static)
        error.update(plain(field_message(self.spec, message)) if message else "")
        self.set_class(bool(message), "-invalid")
