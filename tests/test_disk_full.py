"""SPEC §8: a full disk stops the run cleanly; nothing half-written looks complete."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest
from PIL import Image

from helpers import only_session, run_cli, write_config
from lse_core.latents import load_embedding


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("needs root to mount a small tmpfs")
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)]).returncode:
        pytest.skip("cannot mount a tmpfs here")
    yield mount
    subprocess.run(["umount", str(mount)])


def test_disk_full_stops_cleanly_and_resumes(tmp_path, small_disk, capsys):
    config = write_config(tmp_path / "interp.yaml", model_identifier="txt2img",
                          exp_identifier="interpolation", model_id="tiny", height=64, width=64,
                          diffusion_steps=2, rand_seed=1, batch_size=2, interpolation_steps=6,
                          inter_prompts=["a fox", "a whale"], inter_noises=[1, 2])
    assert run_cli("run", str(config), "--out", str(small_disk)) == 1
    assert "disk full: stopped cleanly" in capsys.readouterr().err
    session = only_session(small_disk)
    assert json.loads((session / "session.json").read_text())["state"] == "interrupted"
    pngs = list((session / "images").glob("*.png"))
    assert len(pngs) < 8
    for png in pngs:  # every frame that looks complete is complete
        with Image.open(png) as image:
            image.load()
        load_embedding(session / "embeddings" / f"{png.stem}.safetensors")

    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    assert run_cli("resume", str(session)) == 0
    assert len(list((session / "images").glob("*.png"))) == 8
