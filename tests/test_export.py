"""`lse export`: frame rates a GIF or MP4 can hold, refused before anything is touched;
a GIF/MP4 replaced only by one that reads back whole; a plain word when there is no MP4."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PIL import Image

from helpers import only_session, run_cli, write_config
from lse_core.errors import BadInput
from lse_core.files import publish
from lse_core.media import MediaCheckFailed, _check_gif, _check_video, check_fps

TINY = {"model_identifier": "txt2img", "model_id": "tiny", "height": 64, "width": 64,
        "diffusion_steps": 2, "rand_seed": 3}


@pytest.fixture(scope="module")
def interpolation(tmp_path_factory) -> Path:
    """A finished interpolation: 7 frames, output-0.gif and output-0.mp4."""
    root = tmp_path_factory.mktemp("interpolation")
    config = write_config(root / "c.yaml", **TINY, exp_identifier="interpolation",
                          inter_prompts=["a fox", "a bird"], inter_noises=[3, 4])
    assert run_cli("run", str(config), "--out", str(root / "s")) == 0
    return only_session(root / "s")


@pytest.fixture
def session(interpolation, tmp_path) -> Path:
    return Path(shutil.copytree(interpolation, tmp_path / interpolation.name))


def _media(session: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in [*session.glob("gifs/*"), *session.glob("videos/*")]}


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize("args", [
    ["--mp4", "--fps", "1e-7"], ["--gif", "--fps", "0.001"], ["--fps", "0.01"],
    ["--gif", "--fps", "101"], ["--mp4", "--fps", "241"], ["--fps", "nan"], ["--fps", "-5"],
])
def test_an_out_of_range_fps_is_refused_before_anything_is_touched(args, session, capsys):
    before = _media(session)
    assert run_cli("export", str(session), *args) == 2
    assert _one_line(capsys.readouterr().err).startswith("lse: --fps: must be from 1/60")
    assert _media(session) == before
    assert not [p for p in session.rglob("*") if ".tmp" in p.name]


@pytest.mark.parametrize("args,frame_ms", [(["--gif", "--fps", "100"], 10),
                                           (["--gif", "--fps", str(1 / 60)], 60_000)])
def test_the_fps_limits_themselves_make_a_gif_of_every_frame(args, frame_ms, session):
    assert run_cli("export", str(session), *args) == 0
    with Image.open(session / "gifs" / "output-0.gif") as gif:
        durations = []
        for index in range(gif.n_frames):
            gif.seek(index)
            durations.append(gif.info["duration"])
    assert sum(durations) == 7 * frame_ms


def test_an_mp4_at_a_frame_a_minute_holds_every_frame(session):
    import imageio_ffmpeg

    assert run_cli("export", str(session), "--mp4", "--fps", str(1 / 60)) == 0
    frames, seconds = imageio_ffmpeg.count_frames_and_secs(str(session / "videos" / "output-0.mp4"))
    assert frames == 7 and seconds == pytest.approx(7 * 60, rel=0.01)


def test_both_formats_take_the_stricter_limit():
    check_fps(240, gif=False, video=True)
    with pytest.raises(BadInput, match="to 100 "):
        check_fps(240, gif=True, video=True)


def test_a_written_file_that_fails_its_check_replaces_nothing(tmp_path):
    target = tmp_path / "movie.gif"
    target.write_bytes(b"the good one")

    def refuse(tmp: Path) -> None:
        raise MediaCheckFailed("broken")

    with pytest.raises(MediaCheckFailed):
        publish(target, lambda tmp: tmp.write_bytes(b"broken"), check=refuse)
    assert target.read_bytes() == b"the good one"
    assert list(tmp_path.iterdir()) == [target]


def test_the_checks_refuse_truncated_media(session, tmp_path):
    gif, video = session / "gifs" / "output-0.gif", session / "videos" / "output-0.mp4"
    _check_gif(gif, 7, 100, "g")
    _check_video(video, 7, "v")
    with pytest.raises(MediaCheckFailed, match="^g: the GIF written lasts 700 ms, not 8 frames"):
        _check_gif(gif, 8, 100, "g")  # one frame short
    with pytest.raises(MediaCheckFailed, match="^v: the MP4 written holds 7 frames, not 8"):
        _check_video(video, 8, "v")
    for original in (gif, video):
        cut = tmp_path / f"cut{original.suffix}"
        cut.write_bytes(original.read_bytes()[: original.stat().st_size // 2])
        with pytest.raises(MediaCheckFailed):
            (_check_gif(cut, 7, 100, "g") if original.suffix == ".gif"
             else _check_video(cut, 7, "v"))
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(MediaCheckFailed):
        _check_video(empty, 7, "v")


@pytest.fixture(scope="module")
def no_video(tmp_path_factory) -> Path:
    """Two single-inference images: a GIF of them, no video."""
    root = tmp_path_factory.mktemp("single")
    config = write_config(root / "c.yaml", **TINY, exp_identifier="single-inference",
                          prompt="a fox", images_per_prompt=2)
    assert run_cli("run", str(config), "--out", str(root / "s")) == 0
    return only_session(root / "s")


def test_mp4_alone_where_there_is_no_video_says_so(no_video, capsys):
    assert run_cli("export", str(no_video), "--mp4") == 2
    line = _one_line(capsys.readouterr().err)
    assert line.startswith("lse: --mp4: no MP4 for this session")
    assert not list((no_video / "videos").glob("*.mp4"))


def test_export_of_both_writes_the_gif_and_says_there_is_no_mp4(no_video, capsys):
    assert run_cli("export", str(no_video)) == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == [str(no_video / "gifs" / "outputs.gif")]
    assert _one_line(err).startswith("lse: no MP4 for this session")
