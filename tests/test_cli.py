"""The command line itself: version, help for every argument, fast answers (SPEC §7)."""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

import pytest

from helpers import ROOT, run_cli
from lse_core import __version__
from lse_core.cli import build_parser


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_version(capsys):
    with pytest.raises(SystemExit) as done:
        run_cli("--version")
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"lse {__version__}"


@pytest.mark.parametrize("command", sorted(_subparsers()))
def test_every_argument_has_help(command):
    parser = _subparsers()[command]
    assert parser.description, f"lse {command} has no description"
    for action in parser._actions:
        assert action.help and action.help != argparse.SUPPRESS, \
            f"lse {command}: {action.dest} has no help"
    text = parser.format_help()
    for action in parser._actions:
        assert action.help.split("%")[0][:20] in " ".join(text.split())


def test_help_answers_at_once():
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "lse_core.cli", "export", "--help"],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0 and "--fps" in done.stdout
    assert time.monotonic() - started < 3  # no torch import for help


def test_a_missing_file_in_an_override_is_found_before_the_model_loads(capsys):
    started = time.monotonic()
    code = run_cli("run", "configs/img2img/single_inference.yaml", "--set", "image=missing.png")
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err == "lse: configs/img2img/single_inference.yaml: key 'image': missing.png: file not found"
    assert time.monotonic() - started < 1.5


def test_counts_of_one_are_singular():
    from pathlib import Path

    from lse_core.events import Finished, Interrupted, Started, WaitingForChoice
    from lse_core.progress import describe

    where = Path("/s")
    assert describe(Finished(where, 1, ())) == "done: 1 frame in /s"
    assert describe(Finished(where, 2, ())) == "done: 2 frames in /s"
    assert describe(Interrupted(where, 1)) == "interrupted after 1 frame; resume with: lse resume /s"
    assert describe(Started(where, 1, 0, 4, 3)) == "session /s (1 frame, batch 4)"
    assert describe(WaitingForChoice(2, 3, "", lineage=({"id": 0},))) == \
        "generation 2 ready: genes 0-2, lineage of 1 node"
    assert describe(WaitingForChoice(2, 3, "", lineage=({"id": 0}, {"id": 1}))) == \
        "generation 2 ready: genes 0-2, lineage of 2 nodes"
