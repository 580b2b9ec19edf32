"""The lse Textual app: shared state (model override, renderer, sessions folder)
and the navigation between screens. ``lse``, ``lse tui`` and ``python lse_tui.py``
all land in ``run_app``; tests build the same app with ``create_app``."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, NoReturn

from textual import events
from textual.app import App, ScreenStackError, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from lse_core.events import Loaded
from lse_core.progress import EXIT_DONE

from .base import KeysBeforeFocus
from .home import HomeScreen
from .preview import GRAPHICS, image_widget_class

if TYPE_CHECKING:
    from lse_core.config import ExperimentConfig

    from .run_view import RunScreen

# The home screen is all the first paint needs: every other screen's module is
# imported when it is first opened, so the first screen is not kept waiting.
DEFAULT_SESSIONS = Path("sessions")


class LseApp(App[int]):
    TITLE = "lse"
    BINDINGS = [
        Binding("ctrl+q", "quit", "Quit", id="app.quit", show=False, priority=True),
        # ? types itself into a text field; F1 opens the keys there too.
        Binding("f1,question_mark", "show_keys", "Keys", key_display="?", id="app.keys"),
    ]

    def __init__(self, model: str | None = None, graphics: str = "auto",
                 sessions_dir: Path = DEFAULT_SESSIONS) -> None:
        super().__init__()
        if graphics not in GRAPHICS:
            raise ValueError(f"graphics must be one of {', '.join(GRAPHICS)}")
        self.model_override = model
        self.graphics = graphics
        self.sessions_dir = sessions_dir
        self.loaded: Loaded | None = None
        self.held_keys: list[events.Key] = []  # typed before the screen was ready

    def on_mount(self) -> None:
        self.push_screen(HomeScreen())

    # keys typed before a screen is ready ---------------------------------------
    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key) and not event.is_forwarded and self.holding_keys():
            self.held_keys.append(event)
            return
        await super().on_event(event)

    def holding_keys(self) -> bool:
        """Keys wait while the screen on top is being built (see KeysBeforeFocus)."""
        try:
            screen = self.screen
        except ScreenStackError:
            return False
        return isinstance(screen, KeysBeforeFocus) and not screen.keys_released

    async def release_held_keys(self) -> None:
        """The screen on top has its focus: the keys held for it, in order, before any
        typed later; a key that opens another screen holds the rest for that one."""
        screen = self.screen
        if isinstance(screen, KeysBeforeFocus):
            screen.keys_released = True
        while self.held_keys and not self.holding_keys():
            await super().on_event(self.held_keys.pop(0))

    # navigation ---------------------------------------------------------------
    def form_values(self, values: dict[str, Any] | None) -> dict[str, Any]:
        """A form's starting values: ``--model`` wins, as on the command line; for the
        trained ``tiny`` the guidance it draws its captions' colours at, unless given."""
        from lse_core.sources import TINY_GUIDANCE

        data = {"output_path": str(self.sessions_dir), **(values or {})}
        if self.model_override is not None:
            data["model_id"] = self.model_override
        if data.get("model_id") == "tiny":
            data.setdefault("guidance_scale", TINY_GUIDANCE)
        return data

    def open_form(self, kind: str, experiment: str, values: dict[str, Any] | None = None,
                  replace: bool = False) -> None:
        from .form import ExperimentForm

        form = ExperimentForm(kind, experiment, self.form_values(values),
                              check_now=values is not None)
        if replace:
            self.switch_screen(form)
        else:
            self.push_screen(form)

    def load_config_into_form(self, replace: bool = False,
                              on_error: Callable[[str], None] | None = None) -> None:
        """Ask for a YAML config and open it in the form of its experiment."""
        from lse_core.config import EXPERIMENTS, MODEL_KINDS, read_yaml
        from lse_core.errors import BadInput

        from .dialogs import YAML_SUFFIXES, PathDialog

        def report(message: str) -> None:
            (on_error or (lambda m: self.notify(m, severity="error")))(message)

        def load(path: Path | None) -> None:
            if path is None:
                return
            try:
                data = read_yaml(path)
            except BadInput as exc:
                report(str(exc))
                return
            kind, experiment = data.get("model_identifier"), data.get("exp_identifier")
            if kind not in MODEL_KINDS or experiment not in EXPERIMENTS:
                report(f"{path}: key 'model_identifier' / 'exp_identifier': "
                       f"'{kind} {experiment}' is not a known model kind and experiment")
                return
            self.open_form(kind, experiment, data, replace=replace)

        # Nothing typed for the user: a path is typed from the working folder (→ completes
        # it), the way `lse run` takes it; the tree below starts there too.
        self.push_screen(PathDialog("Load a YAML config", YAML_SUFFIXES), load)

    def open_sessions(self, select: Path | None = None) -> None:
        from .sessions import SessionsScreen

        self.push_screen(SessionsScreen(self.sessions_dir, select))

    def start_run(self, cfg: ExperimentConfig,
                  on_bad_input: Callable[[BadInput], None]) -> None:
        from lse_core.run import ExperimentRun, RunOptions

        from .run_view import RunScreen

        model = cfg.model_id or "default model"
        title = f"{cfg.exp_identifier} · {cfg.model_identifier} · {model}"
        run = ExperimentRun(cfg, RunOptions(live_preview=True))
        self.push_screen(RunScreen(run, title, self.graphics),
                         lambda message: on_bad_input(message) if message else None)

    def resume(self, session: Path, verb: str = "resume") -> None:
        """Resume a stopped session, or continue a finished diffevolution (``verb``)."""
        from lse_core.run import ExperimentRun, RunOptions

        from .run_view import RunScreen

        run = ExperimentRun(options=RunOptions(live_preview=True), resume=session)
        self.push_screen(RunScreen(run, f"{verb} {session.name}",
                                   self.graphics))

    def action_show_keys(self) -> None:
        from .help import KeysScreen, key_rows

        screen = self.screen
        if not isinstance(screen, KeysScreen):
            title = getattr(screen, "HELP_TITLE", type(screen).__name__)
            self.push_screen(KeysScreen(title, key_rows(screen, self)))

    def on_run_screen_model_loaded(self, message: RunScreen.ModelLoaded) -> None:
        self.loaded = message.loaded

    # command palette ----------------------------------------------------------
    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """Every key the footer shows is in the palette too, with its key."""
        yield from super().get_system_commands(screen)
        seen = set()
        for active in screen.active_bindings.values():
            binding = active.binding
            offered = active.enabled and binding.show and binding.description
            if not offered or binding.action in seen:
                continue
            seen.add(binding.action)
            yield SystemCommand(
                binding.description, f"key: {self.get_key_display(binding)}",
                lambda node=active.node, action=binding.action: self.run_action(action, node))


def create_app(model: str | None = None, graphics: str = "auto",
               sessions_dir: Path = DEFAULT_SESSIONS) -> LseApp:
    return LseApp(model=model, graphics=graphics, sessions_dir=sessions_dir)


def run_app(model: str | None, graphics: str) -> NoReturn:
    """Run the TUI until the user quits, then end the process with ``lse``'s exit code."""
    # textual-image asks the terminal what it can draw; Textual must not own it yet.
    image_widget_class(graphics)
    app = create_app(model=model, graphics=graphics)
    app.run()
    leave(app.return_code or EXIT_DONE)


def leave(code: int) -> NoReturn:
    """End the process now. When the app has closed, a run it started has stopped and
    its thread is joined (the run view's worker joins it, and asyncio waits for that),
    so every file is written; what is left is the interpreter unloading torch and the
    model module by module, seconds of a still terminal for nothing."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
