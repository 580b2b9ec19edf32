"""The session store against sessions it did not make: links, FIFOs, crafted manifests,
damaged journals, sessions from before the journal; and what a finished session's
resume leaves alone."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from helpers import ROOT, one_line_exit_2, only_session, pngs, run_cli, write_config

INTERPOLATION = {"model_identifier": "txt2img", "exp_identifier": "interpolation",
                 "model_id": "tiny", "height": 64, "width": 64, "diffusion_steps": 2,
                 "rand_seed": 1, "inter_prompts": ["a fox", "a bird"], "inter_noises": [3, 4],
                 "interpolation_steps": 5, "batch_size": 2}
EVOLUTION = {"model_identifier": "txt2img", "exp_identifier": "diffevolution", "model_id": "tiny",
             "prompt": "a harbour", "height": 32, "width": 32, "diffusion_steps": 2,
             "rand_seed": 5, "genes_per_generation": 2, "batch_size": 2}
FRAME = "interpolation_lstitms-0,1_step-3"


def _made(tmp_path_factory, name: str, keys: dict, *extra: str) -> Path:
    folder = tmp_path_factory.mktemp(name)
    config = write_config(folder / "config.yaml", **keys)
    assert run_cli("run", str(config), "--out", str(folder / "s"), *extra) == 0
    return only_session(folder / "s")


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    return _made(tmp_path_factory, "interpolation", INTERPOLATION)


@pytest.fixture(scope="module")
def evolution(tmp_path_factory) -> Path:
    return _made(tmp_path_factory, "evolution", EVOLUTION, "--auto", "1")


def _copy(session: Path, target: Path) -> Path:
    shutil.copytree(session, target, symlinks=True)
    return target


def _lse(*args: str) -> subprocess.CompletedProcess:
    """In its own process, so that a hang (a FIFO opened for reading) fails the test."""
    return subprocess.run([sys.executable, "-m", "lse_core.cli", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def _listing(root: Path) -> dict[str, list[str]]:
    """`lse sessions` piped: one tab-separated line per session, by folder name."""
    done = _lse("sessions", str(root))
    assert done.returncode == 0 and not done.stderr, done.stderr
    rows = [line.split("\t") for line in done.stdout.splitlines()]
    return {Path(row[5]).name: [row[1], *row[6:]] for row in rows}


def _edit(path: Path, change) -> None:
    path.write_text(json.dumps(change(json.loads(path.read_text()))))


def _set_state(session: Path, state: str) -> None:
    _edit(session / "session.json", lambda m: {**m, "state": state})


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


# links ------------------------------------------------------------------------------------

LINKED = ["images", "embeddings", "gifs", "videos", "configs", f"images/{FRAME}.png",
          f"embeddings/{FRAME}.safetensors", "gifs/output-0.gif", "session.json",
          "configs/config.yaml", "frames.jsonl", ".session.lock"]


@pytest.mark.parametrize("part", LINKED)
def test_a_link_inside_a_session_refuses_it_and_nothing_outside_changes(part, finished, tmp_path):
    root = tmp_path / "s"
    linked = _copy(finished, root / "linked")
    _copy(finished, root / "good")
    _set_state(linked, "interrupted")  # a resume would verify, remove and write files
    outside = tmp_path / "outside"
    outside.mkdir()
    target = outside / Path(part).name
    shutil.move(linked / part, target)
    (linked / part).symlink_to(target, target_is_directory=target.is_dir())
    if target.is_dir():  # what lse once deleted: a file it did not write, in a linked folder
        (target / "precious.png").write_bytes(b"not a frame lse wrote")
    before = _tree(outside)

    rows = _listing(root)
    assert rows["good"][0] == "done"
    assert rows["linked"][0] == "unreadable" and "symbolic link" in rows["linked"][1]
    for command in ("resume", "export"):
        done = _lse(command, str(linked))
        one_line_exit_2(done.returncode, done.stderr, "is a symbolic link (lse never follows links")
    assert _tree(outside) == before


# damaged or crafted sessions ----------------------------------------------------------------

def _fifo(path: Path) -> None:
    path.unlink()
    os.mkfifo(path)


def _to_dev_zero(path: Path) -> None:
    path.unlink()
    path.symlink_to("/dev/zero")


def _choice(session: Path, **answer) -> None:
    _edit(session / "session.json", lambda m: {
        **m, "diffevolution": {**m["diffevolution"], "choices": [answer]}})


DAMAGED = {
    "updated 1e300": (lambda s: _edit(s / "session.json", lambda m: {**m, "updated": 1e300}),
                      "key 'updated': Input should be less than or equal to 32503680000"),
    "updated -1e13": (lambda s: _edit(s / "session.json", lambda m: {**m, "updated": -1e13}),
                      "key 'updated': Input should be greater than or equal to 0"),
    "100,000 nested brackets": (
        lambda s: (s / "session.json").write_text("[" * 100_000 + "]" * 100_000),
        "session.json: unreadable (nested too deeply)"),
    "session.json a FIFO": (lambda s: _fifo(s / "session.json"), "session.json: is a FIFO"),
    "session.json a link to /dev/zero": (lambda s: _to_dev_zero(s / "session.json"),
                                         "session.json: is a symbolic link"),
    "config a FIFO": (lambda s: _fifo(s / "configs" / "config.yaml"), "config.yaml: is a FIFO"),
    "config a link to /dev/zero": (lambda s: _to_dev_zero(s / "configs" / "config.yaml"),
                                   "config.yaml: is a symbolic link"),
    "a frame a FIFO": (lambda s: _fifo(s / "images" / "difevostep-start.png"),
                       "difevostep-start.png: is a FIFO"),
    "torch_threads 1e9": (
        lambda s: _edit(s / "session.json", lambda m: {**m, "torch_threads": 1_000_000_000}),
        "key 'torch_threads': Input should be less than or equal to 1024"),
    "answer gene 99": (lambda s: _choice(s, gene=99),
                       "key 'diffevolution.choices.0.gene': Input should be less than 16"),
    "answer back 1e9": (lambda s: _choice(s, back=1e9),
                        "key 'diffevolution.choices.0.back': Input should be a valid integer"),
    "answer back 50": (lambda s: _choice(s, back=50),
                       "key 'diffevolution': answer 0: back 50 is past the lineage's 2 nodes"),
    "batch_size 257": (lambda s: _edit(s / "session.json", lambda m: {**m, "batch_size": 257}),
                       "key 'batch_size': Input should be less than or equal to 256"),
}


@pytest.mark.parametrize("case", DAMAGED)
def test_a_damaged_session_is_unreadable_in_one_line_and_the_others_list(case, evolution, tmp_path):
    damage, words = DAMAGED[case]
    root = tmp_path / "s"
    damaged = _copy(evolution, root / "damaged")
    _copy(evolution, root / "good")
    damage(damaged)
    rows = _listing(root)
    assert rows["good"][0] == "done"
    assert rows["damaged"][0] == "unreadable" and words in rows["damaged"][1], rows
    for command in ("resume", "export"):
        done = _lse(command, str(damaged), *(["--auto", "1"] if command == "resume" else []))
        one_line_exit_2(done.returncode, done.stderr, words)


def test_a_journal_line_carrying_terminal_escapes_is_refused_in_one_line(finished, tmp_path):
    session = _copy(finished, tmp_path / "s" / "one")
    hostile = {"frame": {"name": FRAME, "position": 3, "label": "x\x1b]0;PWNED\x07\x1b[2J",
                         "role": "between", "parent": None}}
    journal = session / "frames.jsonl"
    journal.write_bytes(json.dumps(hostile).encode() + b"\n" + journal.read_bytes())
    for command in ("resume", "export"):
        done = _lse(command, str(session))
        one_line_exit_2(done.returncode, done.stderr,
                        "frames.jsonl: line 1 is not a journal entry lse wrote")
        assert "PWNED" not in done.stderr and "\x1b" not in done.stderr


def _png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header announces ``width``×``height`` (its pixels are cut short)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


def test_a_30000_square_frame_is_refused_by_export_and_made_again_by_resume(finished, tmp_path):
    session = _copy(finished, tmp_path / "s" / "big")
    (session / "images" / f"{FRAME}.png").write_bytes(_png_claiming(30000, 30000))
    done = _lse("export", str(session))
    one_line_exit_2(done.returncode, done.stderr, f"{FRAME}.png: an image of over 67,108,864 pixels")
    # Listing reads no frame (that would cost a read per frame of every session).
    assert _listing(tmp_path / "s")["big"][0] == "done"
    # Its checksum does not match: a resume makes the frame again, as for any damaged frame.
    assert run_cli("resume", str(session)) == 0
    assert pngs(session) == pngs(finished)


# what lse sessions and a finished session's resume leave alone ------------------------------

def test_listing_sessions_creates_no_files(finished, tmp_path):
    session = _copy(finished, tmp_path / "s" / "one")
    for name in (".session.lock", ".session.owner"):
        (session / name).unlink()
    _set_state(session, "running")  # as a killed run leaves it: the listing asks the lock
    before = sorted(tmp_path.rglob("*"))
    assert _listing(tmp_path / "s")["one"][0] == "stopped"
    assert sorted(tmp_path.rglob("*")) == before


def test_resuming_a_finished_session_changes_nothing(finished, tmp_path, capsys):
    root = tmp_path / "s"
    older, newer = _copy(finished, root / "older"), _copy(finished, root / "newer")
    _edit(newer / "session.json", lambda m: {**m, "updated": m["updated"] + 60})
    # A copy's files have new inodes: the first resume reads them all and records their status.
    assert run_cli("resume", str(older)) == 0
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in older.rglob("*")
              if p.is_file() and not p.name.startswith(".session.")}
    capsys.readouterr()
    assert run_cli("resume", str(older)) == 0
    assert "interpolation is finished: nothing to resume" in capsys.readouterr().out
    after = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in before}
    assert after == before  # no GIF or MP4 rewritten, session.json untouched
    assert list(_listing(root)) == ["newer", "older"]  # it did not move to the top


def test_a_finished_session_with_a_bad_media_entry_stays_done(evolution, tmp_path):
    session = _copy(evolution, tmp_path / "s" / "one")
    journal = session / "frames.jsonl"
    lines = [json.loads(line) for line in journal.read_text().splitlines()]
    lines = [{"media": {**e["media"], "name": "../X"}} if "media" in e else e for e in lines]
    journal.write_text("".join(json.dumps(e) + "\n" for e in lines))
    manifest = (session / "session.json").read_bytes()
    done = _lse("resume", str(session), "--auto", "1")  # a finished diffevolution goes on …
    one_line_exit_2(done.returncode, done.stderr, "media entry 0: '../X' is not a plain file name")
    assert (session / "session.json").read_bytes() == manifest  # … but not this one: still done
    assert json.loads(manifest)["state"] == "done"


# the journal -----------------------------------------------------------------------------------

def test_a_torn_last_journal_line_is_skipped_and_rewritten_by_a_resume(finished, tmp_path):
    session = _copy(finished, tmp_path / "s" / "torn")
    _set_state(session, "interrupted")
    (session / "images" / f"{FRAME}.png").unlink()
    with open(session / "frames.jsonl", "ab") as journal:
        journal.write(b'{"file":"images/interpolation_lstitms-0,1_st')  # a write cut by a power cut
    assert _listing(tmp_path / "s")["torn"][0] == "interrupted"
    assert run_cli("resume", str(session)) == 0
    assert pngs(session) == pngs(finished)
    lines = (session / "frames.jsonl").read_bytes().split(b"\n")
    assert lines[-1] == b"" and all(json.loads(line) for line in lines[:-1])


def test_a_damaged_journal_line_before_the_last_refuses_the_session(finished, tmp_path):
    session = _copy(finished, tmp_path / "s" / "bad")
    lines = (session / "frames.jsonl").read_text().splitlines()
    lines[1] = '{"frame": {"name": "../../etc"}}'
    (session / "frames.jsonl").write_text("\n".join(lines) + "\n")
    assert _listing(tmp_path / "s")["bad"][0] == "done"  # the listing reads session.json only
    done = _lse("export", str(session))
    one_line_exit_2(done.returncode, done.stderr, "frames.jsonl: line 2 is not a journal entry")


def test_session_json_stays_small_and_each_batch_appends_to_the_journal(finished):
    manifest = json.loads((finished / "session.json").read_text())
    assert "checksums" not in manifest and "media" not in manifest
    assert len((finished / "session.json").read_bytes()) < 2000
    entries = [json.loads(line) for line in (finished / "frames.jsonl").read_text().splitlines()]
    files = {e["file"] for e in entries if "file" in e}
    assert {f"images/{p.name}" for p in (finished / "images").glob("*.png")} <= files
    assert {e["frame"]["name"] for e in entries if "frame" in e} == {
        p.stem for p in (finished / "images").glob("*.png")}


def test_a_file_rewritten_with_its_old_times_is_still_found_damaged(finished, tmp_path, capsys):
    session = _copy(finished, tmp_path / "s" / "one")
    assert run_cli("resume", str(session)) == 0  # records the copy's own file status
    frame = session / "images" / f"{FRAME}.png"
    status = frame.stat()
    frame.write_bytes(frame.read_bytes()[:-20] + b"\0" * 20)  # same size, other bytes …
    os.utime(frame, ns=(status.st_atime_ns, status.st_mtime_ns))  # … and the old mtime
    capsys.readouterr()
    assert run_cli("resume", str(session)) == 0
    assert f"damaged file(s) will be made again: images/{FRAME}.png" in capsys.readouterr().out
    assert pngs(session) == pngs(finished)


def _identity(path: Path) -> tuple[int, int]:
    status = path.stat()
    return status.st_ino, status.st_mtime_ns


def _recorded_pngs(session: Path) -> set[str]:
    journal = session / "frames.jsonl"
    lines = journal.read_text().splitlines() if journal.exists() else []
    return {json.loads(line)["file"].removeprefix("images/") for line in lines
            if line.startswith('{"file":"images/')}


def test_a_kill_between_publishing_a_frame_and_recording_it(finished, tmp_path):
    config = write_config(tmp_path / "interp.yaml", **INTERPOLATION)
    # The 4th PNG ends the second batch of two: the batch is whole on disk, its records are not.
    killed = subprocess.run([sys.executable, str(ROOT / "tests" / "kill_hook.py"), "png-published",
                             "4", "run", str(config), "--out", str(tmp_path / "s")],
                            cwd=ROOT, capture_output=True, timeout=300)
    assert killed.returncode == -9, killed.stderr.decode()
    session = only_session(tmp_path / "s")
    published = {p.name for p in (session / "images").glob("*.png")}
    unrecorded = published - _recorded_pngs(session)
    assert unrecorded, "the kill must land after a PNG is published, before its checksum is recorded"
    kept = {name: _identity(session / "images" / name) for name in unrecorded}
    assert run_cli("resume", str(session)) == 0
    assert pngs(session) == pngs(finished)
    # The whole frame published before the kill is kept (not made again), and recorded now.
    assert {name: _identity(session / "images" / name) for name in unrecorded} == kept
    assert _recorded_pngs(session) == set(pngs(session))
    assert (session / "gifs" / "output-0.gif").read_bytes() == (
        finished / "gifs" / "output-0.gif").read_bytes()


# sessions made before the journal ---------------------------------------------------------------

def _as_before_the_journal(session: Path) -> None:
    """The layout lse wrote before frames.jsonl: checksums and media in session.json."""
    entries = [json.loads(line) for line in (session / "frames.jsonl").read_text().splitlines()]
    manifest = json.loads((session / "session.json").read_text())
    manifest["checksums"] = {e["file"]: e["sum"][0] for e in entries if "file" in e}
    manifest["media"] = [e["media"] for e in entries if "media" in e]
    (session / "session.json").write_text(json.dumps(manifest))
    (session / "frames.jsonl").unlink()


def test_a_session_from_before_the_journal_lists_exports_and_resumes(finished, tmp_path):
    from lse_core.session import Session

    session = _copy(finished, tmp_path / "s" / "old")
    _as_before_the_journal(session)
    assert _listing(tmp_path / "s")["old"][0] == "done"
    # Its frames, in the order its GIF shows them, numbered.
    records = Session.open(session).frames()
    assert [r.name for r in records] == json.loads(
        (session / "session.json").read_text())["media"][0]["frames"]
    assert [r.label for r in records[:2]] == ["frame 0", "frame 1"]
    (session / "gifs" / "output-0.gif").unlink()
    assert _lse("export", str(session), "--gif").returncode == 0
    assert (session / "gifs" / "output-0.gif").read_bytes() == (
        finished / "gifs" / "output-0.gif").read_bytes()
    # A resume checks it against the old checksums, then records its frames as data.
    _set_state(session, "interrupted")
    (session / "images" / f"{FRAME}.png").unlink()
    assert run_cli("resume", str(session)) == 0
    assert pngs(session) == pngs(finished)
    assert Session.open(session).frames() == Session.open(finished).frames()
    assert "checksums" not in json.loads((session / "session.json").read_text())


# the TUI ----------------------------------------------------------------------------------------

def test_the_sessions_browser_marks_a_damaged_session_and_keeps_running(finished, tmp_path):
    import asyncio

    root = tmp_path / "s"
    for name in ("good-1", "good-2", "damaged", "bad-journal", "fifo", "linked"):
        _copy(finished, root / name)
    (root / "damaged" / "session.json").write_text("[" * 100_000 + "]" * 100_000)
    _fifo(root / "fifo" / "session.json")
    (root / "linked" / "images").rename(tmp_path / "outside")
    (root / "linked" / "images").symlink_to(tmp_path / "outside")
    with open(root / "bad-journal" / "frames.jsonl", "r+b") as journal:
        journal.write(b"[[[")  # the listing reads session.json only; its frames are unreadable
    asyncio.run(_browse_past_the_damaged_session(root))


async def _browse_past_the_damaged_session(root: Path) -> None:
    from textual.widgets import DataTable, OptionList

    from screens.preview import FramePreview
    from screens.sessions import SessionsScreen
    from test_tui_support import make_app, open_browser, wait_until

    app = make_app(root)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_browser(pilot)
        browser = app.screen
        assert isinstance(browser, SessionsScreen)
        table = browser.query_one("#session-table", DataTable)
        summaries = list(browser.summaries.values())
        states = {s.path.name: s.state for s in summaries}
        assert states == {"good-1": "done", "good-2": "done", "damaged": "unreadable",
                          "bad-journal": "done", "fifo": "unreadable", "linked": "unreadable"}
        rows = [s.path.name for s in summaries]
        preview = browser.query_one("#session-preview", FramePreview)
        for name, why in [("damaged", "session.json: unreadable (nested too deeply)"),
                          ("bad-journal", "frames.jsonl: line 1 is not a journal entry"),
                          ("fifo", "session.json: is a FIFO"),
                          ("linked", "images: is a symbolic link")]:
            table.move_cursor(row=rows.index(name))
            await wait_until(pilot, lambda: browser.current.path.name == name, f"the {name} row")
            await wait_until(pilot, lambda: preview.caption_text == f"unreadable: {why}"
                             or (preview.caption_text.startswith("unreadable: ")
                                 and why in preview.caption_text),
                             f"the {name} session marked unreadable")
            assert not browser.frames
        table.move_cursor(row=rows.index("good-2"))
        await wait_until(pilot, lambda: len(browser.frames) == 7, "the good session's frames")
        labels = [str(o.prompt) for o in browser.query_one("#session-frames", OptionList).options]
        assert labels[:3] == ["key 0", "key 0→1 · 1", "key 0→1 · 2"]
        assert app.is_running and app.screen is browser


def test_a_stored_gene_past_the_sessions_genes_is_refused_before_anything_changes(evolution, tmp_path):
    session = _copy(evolution, tmp_path / "s" / "one")
    _choice(session, gene=3)  # a whole number below 16, but this session has 2 genes
    manifest = (session / "session.json").read_bytes()
    done = _lse("resume", str(session), "--auto", "1")
    one_line_exit_2(done.returncode, done.stderr,
                    "stored diffevolution answer 0: gene 3 is past this session's 2 genes")
    assert (session / "session.json").read_bytes() == manifest
