"""The base of every lse screen: typed access to the app that owns the shared state, and
the mark of a screen for which the app holds keys until it is ready."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar, cast

from textual import events
from textual.screen import Screen

if TYPE_CHECKING:
    from .app import LseApp

ResultType = TypeVar("ResultType")


class KeysBeforeFocus:
    """Mixed into a screen that gives one of its widgets the focus once it is built.

    Until then Textual hands keys to the screen itself, where nothing takes them:
    typed right after the key that opened the screen (or while a busy machine builds
    it), a prompt lost its first words and a tab moved nothing. The app holds such
    keys (``LseApp.on_event``) and lets them through, in the order typed, once the
    first widget has the focus. Only for screens that always focus a widget.
    """

    keys_released = False

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        if not self.keys_released:
            app = cast("LseApp", self.app)  # type: ignore[attr-defined]
            app.call_later(app.release_held_keys)


class LseScreen(Screen[ResultType]):
    @property
    def lse(self) -> "LseApp":
        return cast("LseApp", self.app)
