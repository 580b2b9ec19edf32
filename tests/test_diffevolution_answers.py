"""Headless diffevolution answers (SPEC §5.5): piped stdin, scripts, --auto, ending while waiting."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from helpers import ROOT, only_session, run_cli, write_config

SMALL = ["--set", "height=64", "--set", "width=64", "--set", "diffusion_steps=2"]


def _lse(*args: str) -> list[str]:
    return [sys.executable, "-m", "lse_core.cli", *args]


def _evolution_config(tmp_path: Path, genes: int = 3) -> Path:
    return write_config(tmp_path / "evo.yaml", model_identifier="txt2img",
                        exp_identifier="diffevolution", model_id="tiny", prompt="a calm sea",
                        height=64, width=64, diffusion_steps=2, rand_seed=9,
                        genes_per_generation=genes, step_size=0.4)


def _genes_on_disk(session: Path) -> set[str]:
    return {p.stem for p in (session / "images").glob("difevostep-*_gene-*.png")}


def test_piped_answers_pick_and_exit(tmp_path):
    out = tmp_path / "s"
    done = subprocess.run(_lse("run", "configs/txt2img/diffevolution.yaml", "--model", "tiny",
                               "--out", str(out), *SMALL),
                          input=b"2;;\nexit\n", capture_output=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    assert b"Traceback" not in done.stderr
    evolution = json.loads((only_session(out) / "session.json").read_text())["diffevolution"]
    assert [node["name"] for node in evolution["lineage"]] == [
        "difevostep-start", "difevostep-1_parent-start_gene-2"]
    # generation 2 was shown (rendered) and then answered with exit
    assert evolution["generations"] == 2


def test_empty_stdin_says_so_on_one_line(tmp_path):
    out = tmp_path / "s"
    with open(os.devnull, "rb") as nothing:
        done = subprocess.run(_lse("run", str(_evolution_config(tmp_path)), "--out", str(out)),
                              stdin=nothing, capture_output=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    said = [line for line in done.stdout.decode().splitlines()
            if "stdin" in line and str(tmp_path) not in line]
    assert said == ["no answers on stdin (it is empty or closed): finishing; pipe answers in, "
                    "or give --auto N or --actions FILE"]
    assert len(_genes_on_disk(only_session(out))) == 3  # the one generation it showed


def test_stdin_running_out_counts_the_generations_answered(tmp_path):
    out = tmp_path / "s"
    done = subprocess.run(_lse("run", str(_evolution_config(tmp_path)), "--out", str(out)),
                          input=b"7\n1\n\n", capture_output=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.decode().splitlines()
    assert "stdin line 1: gene must be a number from 0 to 2; reading the next line" in lines
    assert "stdin ended after answering 2 generations: finishing" in lines


def test_stdin_that_never_ends_a_line_is_not_waited_on(tmp_path):
    """`lse run … < /dev/zero`: no line ever ends; the run finishes with what it has."""
    out = tmp_path / "s"
    with open("/dev/zero", "rb") as zeros:
        done = subprocess.run(_lse("run", str(_evolution_config(tmp_path)), "--out", str(out)),
                              stdin=zeros, capture_output=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.decode().splitlines()
    assert ("stdin line 1: longer than 40100 bytes, so not an answer; no more lines are read"
            in lines)
    assert "stdin ended after answering 0 generations: finishing" in lines
    assert json.loads((only_session(out) / "session.json").read_text())["state"] == "done"


def test_an_actions_file_that_never_ends_is_refused(tmp_path, capsys):
    assert run_cli("run", str(_evolution_config(tmp_path)), "--out", str(tmp_path / "s"),
                   "--actions", "/dev/zero") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["lse: --actions: /dev/zero: larger than 10 MB, so not a file of answers"]


def test_auto_renders_exactly_the_generations_it_picks_from(tmp_path, capsys):
    out = tmp_path / "s"
    assert run_cli("run", str(_evolution_config(tmp_path)), "--out", str(out), "--auto", "3") == 0
    printed = capsys.readouterr().out
    assert "generation 1 ready: genes 0-2, lineage of 1 node\n" in printed
    assert "waiting" not in printed  # --auto never waits for anyone
    session = only_session(out)
    evolution = json.loads((session / "session.json").read_text())["diffevolution"]
    assert evolution["generations"] == 3
    assert len(evolution["lineage"]) == 4  # start + one pick from each generation
    assert {name.split("_")[0] for name in _genes_on_disk(session)} == {
        "difevostep-1", "difevostep-2", "difevostep-3"}


def test_an_actions_file_ending_in_exit_renders_no_extra_generation(tmp_path):
    actions = tmp_path / "actions.txt"
    actions.write_text("1\n0\nexit\n")
    out = tmp_path / "s"
    assert run_cli("run", str(_evolution_config(tmp_path)), "--out", str(out),
                   "--actions", str(actions)) == 0
    evolution = json.loads((only_session(out) / "session.json").read_text())["diffevolution"]
    assert evolution["generations"] == 2 and len(evolution["lineage"]) == 3


def test_actions_file_that_is_not_utf8(tmp_path, capsys):
    actions = tmp_path / "actions.txt"
    actions.write_bytes(b"1\n\xff\xfe\n")
    assert run_cli("run", str(_evolution_config(tmp_path)), "--out", str(tmp_path / "s"),
                   "--actions", str(actions)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"lse: --actions: {actions}: not UTF-8 text"]


def test_stopping_while_a_generation_waits_keeps_it_and_the_lineage(tmp_path):
    out = tmp_path / "s"
    process = subprocess.Popen(_lse("run", str(_evolution_config(tmp_path)), "--out", str(out)),
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, cwd=ROOT)
    process.stdin.write(b"1\n")
    process.stdin.flush()
    # the pipe stays open: generation 2 is rendered and waits for an answer that never comes
    deadline = time.monotonic() + 120
    while len(_genes_on_disk(only_session(out)) if out.exists() and any(out.iterdir()) else ()) < 6:
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.05)
    session = only_session(out)
    while json.loads((session / "session.json").read_text()).get(
            "diffevolution", {}).get("generations") != 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 130
    manifest = json.loads((session / "session.json").read_text())
    assert manifest["state"] == "interrupted"
    evolution = manifest["diffevolution"]
    assert evolution["generations"] == 2 and len(evolution["lineage"]) == 2
    assert len(_genes_on_disk(session)) == 6
    # ... and the run goes on from there: the same lineage, generation 2 answered from disk
    actions = tmp_path / "more.txt"
    actions.write_text("0\n")
    assert run_cli("resume", str(session), "--actions", str(actions)) == 0
    evolution = json.loads((session / "session.json").read_text())["diffevolution"]
    assert [n["parent"] for n in evolution["lineage"]] == [None, 0, 1]
    assert evolution["generations"] == 2 and len(_genes_on_disk(session)) == 6


def test_a_finished_session_continues_with_more_generations(tmp_path):
    out = tmp_path / "s"
    assert run_cli("run", str(_evolution_config(tmp_path)), "--out", str(out), "--auto", "2") == 0
    session = only_session(out)
    first = json.loads((session / "session.json").read_text())
    assert first["state"] == "done" and first["diffevolution"]["generations"] == 2
    assert run_cli("resume", str(session), "--auto", "1") == 0
    evolution = json.loads((session / "session.json").read_text())["diffevolution"]
    assert evolution["generations"] == 3
    assert evolution["lineage"][:3] == first["diffevolution"]["lineage"]
    assert len(evolution["lineage"]) == 4 and evolution["lineage"][3]["parent"] == 2
