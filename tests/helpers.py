"""Helpers the tests share: run the CLI in-process, find the session it wrote."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPAT = ROOT.parent / "shared" / "compat"
SMALL = ["height=64", "width=64", "diffusion_steps=3"]


def run_cli(*args: str) -> int:
    from lse_core.cli import main

    return main(list(args))


def run_config(config: str | Path, out: Path, *overrides: str, model: str = "tiny") -> int:
    args = ["run", str(config), "--model", model, "--out", str(out)]
    for item in (*SMALL, *overrides):
        args += ["--set", item]
    return run_cli(*args)


def only_session(out: Path) -> Path:
    sessions = [p for p in out.iterdir() if p.is_dir()]
    assert len(sessions) == 1, sessions
    return sessions[0]


def run_in_process(cfg, options=None, stop_after: type | None = None, count: int = 1):
    """Run an experiment in this process, as the TUI does, and return its last event;
    ``stop_after``: cancel the run at the ``count``-th event of that type."""
    import asyncio

    from lse_core.run import ExperimentRun

    run = ExperimentRun(cfg, options)

    async def consume():
        seen, last = 0, None
        async for event in run.events():
            last = event
            if stop_after is not None and isinstance(event, stop_after):
                seen += 1
                if seen == count:
                    run.cancel()
        return last

    return asyncio.run(consume())


def pngs(session: Path) -> dict[str, bytes]:
    """A session's frame files by name (``….png``), with their bytes."""
    return {p.name: p.read_bytes() for p in (session / "images").glob("*.png")}


def write_config(path: Path, **keys) -> Path:
    path.write_text(yaml.safe_dump(keys))
    return path


def one_line_exit_2(code: int, err: str, words: str) -> None:
    """Bad input: exit 2 and one short line that says ``words``, no traceback."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1 and words in lines[0], err
    assert "Traceback" not in err
    assert len(lines[0]) < 400, "a message must not echo a long input back"
