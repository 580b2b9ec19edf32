"""The TUI's first screen waits for nothing heavy: no torch, no diffusers at import."""

from __future__ import annotations

import subprocess
import sys

from helpers import ROOT

HEAVY = ("torch", "diffusers", "transformers", "safetensors")


def test_importing_the_app_imports_no_model_library() -> None:
    code = ("import sys\n"
            "import screens.app\n"
            f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


async def test_listing_sessions_never_holds_up_the_screens(tmp_path, monkeypatch) -> None:
    """Home and the sessions browser list sessions in thread workers: while a listing
    is stuck (a slow disk, thousands of sessions), both screens show and take keys."""
    import threading

    import screens.home
    import screens.sessions
    from screens.home import HomeScreen
    from screens.sessions import SessionsScreen
    from test_tui_support import make_app, wait_until

    release, returned = threading.Event(), threading.Event()
    real = screens.home.read_sessions

    def stuck(root):
        release.wait(20)  # a listing on the UI thread would hold every screen this long
        returned.set()
        return real(root)

    monkeypatch.setattr(screens.home, "read_sessions", stuck)
    monkeypatch.setattr(screens.sessions, "read_sessions", stuck)
    app = make_app(tmp_path / "sessions")
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_until(pilot, lambda: isinstance(app.screen, HomeScreen), "home")
            await pilot.press("s")
            await wait_until(pilot, lambda: isinstance(app.screen, SessionsScreen), "the browser")
            assert "reading the sessions" in str(app.screen.query_one("#session-selected").render())
            await pilot.press("escape")
            await wait_until(pilot, lambda: isinstance(app.screen, HomeScreen), "home again")
            assert not returned.is_set(), "a screen waited for the listing"
            release.set()
    finally:
        release.set()
