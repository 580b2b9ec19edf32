"""Lists that never wrap: one frame, one session node, one line, at 80×24 and 120×40."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from textual.widgets import OptionList

from lse_core.events import FrameReady, Loaded, Started
from lse_core.frames import FrameRecord
from lse_core.journal import frame_line
from screens.dialogs import ChoiceDialog
from screens.evolution import lineage_rows
from screens.run_view import RunScreen
from test_tui_support import ScriptedRun, make_app, open_browser, wait_until

SIZES = [(80, 24), (120, 40)]
# Long labels of the kinds the experiments write (a random walk of several images, an
# interpolation past ten keyframes, an outpaint walk, a diffevolution).
LONG_LABELS = ["img 1 · dir 10 · start", "img 1 · dir 10 · step 99", "key 10→11 · 12",
               "key 12 · filler 15", "gen 12 · gene 15", "dir 0 · step 100", "dir 0 · step 101"]
LABEL_ROOM = max(map(len, LONG_LABELS))  # characters a frame label must have
RECORDS = [FrameRecord(f"frame-{index}", index, label, "step")
           for index, label in enumerate(LONG_LABELS)]


def one_line_each(options: OptionList) -> bool:
    """Every option takes one line of the list, and a label of LABEL_ROOM characters fits."""
    lines = options._line_cache.lines  # (option index, line) per line drawn
    room = options.scrollable_content_region.width - options.styles.padding.width
    return (options.option_count > 0 and len(lines) == options.option_count
            and room >= LABEL_ROOM)


def frames_script(session: Path) -> list:
    images = session / "images"
    images.mkdir(parents=True)
    events = [Loaded("tiny", "cpu", "float32", 1.0), Started(session, len(RECORDS), 0, 1, 2)]
    for index, record in enumerate(RECORDS):
        picture = Image.new("RGB", (64, 64), (40 * index, 90, 200))
        picture.save(images / f"{record.name}.png")
        events.append(FrameReady(index, record, images / f"{record.name}.png", picture))
    (session / "frames.jsonl").write_bytes(b"".join(map(frame_line, RECORDS)))
    return events


@pytest.mark.parametrize("size", SIZES)
async def test_the_run_view_lists_one_frame_a_line(size: tuple[int, int], tmp_path: Path) -> None:
    app = make_app(tmp_path / "sessions")
    async with app.run_test(size=size) as pilot:
        run = ScriptedRun(frames_script(tmp_path / "sessions" / "s_txt2img_random-walk"))
        await app.push_screen(RunScreen(run, "random-walk · txt2img · tiny", "halfcell"))
        strip = app.screen.query_one("#frame-list", OptionList)
        await wait_until(pilot, lambda: strip.option_count == len(RECORDS)
                         and len(strip._line_cache.lines) > 0, "the frames listed")
        await pilot.pause()
        assert one_line_each(strip)


@pytest.mark.parametrize("size", SIZES)
async def test_the_sessions_browser_lists_one_frame_a_line(size: tuple[int, int],
                                                           tmp_path: Path) -> None:
    root = tmp_path / "sessions"
    session = root / "2026-01-02_03-04-05_txt2img_random-walk"
    frames_script(session)
    (session / "configs").mkdir()
    (session / "configs" / "config.yaml").write_text(
        "model_identifier: txt2img\nexp_identifier: random-walk\nprompt: a fox\n")
    (root / "2026-01-02_03-04-05_txt2img_random-walk" / "session.json").write_text(
        '{"model_identifier": "txt2img", "exp_identifier": "random-walk", "model_id": "tiny", '
        '"state": "done", "frames_done": 7, "frames_planned": 7, "updated": 1767323045.0, '
        '"batch_size": 2}')
    app = make_app(root)
    async with app.run_test(size=size) as pilot:
        await open_browser(pilot)
        frames = app.screen.query_one("#session-frames", OptionList)
        await wait_until(pilot, lambda: len(frames._line_cache.lines) > 0, "the frames drawn")
        assert one_line_each(frames)


async def test_the_lineage_dialog_lists_one_node_a_line_at_80_columns(tmp_path: Path) -> None:
    nodes = [{"id": 0, "name": "difevostep-start", "parent": None, "generation": 0,
              "label": "start"}]
    for node in range(1, 8):  # a chain: each node the parent of the next
        nodes.append({"id": node, "name": f"difevostep-{node}_parent-13_gene-13",
                      "parent": node - 1, "generation": node, "label": f"gen {node} · gene 13"})
    rows = lineage_rows(tuple(nodes), current=7)
    app = make_app(tmp_path / "sessions")
    async with app.run_test(size=(80, 24)) as pilot:
        await app.push_screen(ChoiceDialog("Lineage", [label for _, label in rows], rows[-1][1]))
        choices = app.screen.query_one("#choices", OptionList)
        await wait_until(pilot, lambda: len(choices._line_cache.lines) > 0, "the lineage drawn")
        assert len(choices._line_cache.lines) == len(rows)
        # The marked node is whole, its mark included.
        assert rows[-1][1].endswith("◀ now") and len(rows[-1][1]) <= (
            choices.scrollable_content_region.width - choices.styles.padding.width)
