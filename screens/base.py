"""The base of every lse screen: typed access to the app that owns the shared state."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar, cast

from textual.screen import Screen

if TYPE_CHECKING:
    from .app import LseApp

ResultType = TypeVar("ResultType")


class LseScreen(Screen[ResultType]):
    @property
    def lse(self) -> "LseApp":
        return cast("LseApp", self.app)
