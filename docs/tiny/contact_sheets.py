"""The README's contact sheets: one journey per experiment with the trained ``tiny`` model.

    python docs/tiny/contact_sheets.py

Runs each config next to this file with ``lse run`` (64×64, the model's native
size) and lays the journey's frames out in one row, each frame doubled in size.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Iterable

from PIL import Image

from screens.frame_names import story_key

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
SCALE = 2
GAP = 4


def _run(config: str, out: Path, *extra: str) -> Path:
    from lse_core.cli import main

    if main(["run", str(HERE / config), "--out", str(out), *extra]) != 0:
        sys.exit(f"{config} failed")
    [session] = [p for p in out.iterdir() if p.is_dir()]
    return session


def _frames(config: str, session: Path) -> list[Path]:
    """The journey's frames in the order the experiment shows them."""
    images = session / "images"
    if config == "visualize_diffusion.yaml":
        return _in_story_order(images.glob("output-0_diffstep-*.png"))
    if config == "random_walk.yaml":
        return _in_story_order(images.glob("output-0_direction-0_*.png"))
    if config == "diffevolution.yaml":
        lineage = json.loads((session / "session.json").read_text())["diffevolution"]["lineage"]
        return [images / f"{node['name']}.png" for node in lineage]
    if config == "img2img.yaml":
        return [ROOT / "resources" / "shapes.png"] + sorted(images.glob("output-*.png"))
    if config == "inpaint.yaml":
        inputs = [ROOT / "resources" / "shapes.png", ROOT / "resources" / "shapes_mask.png"]
        return inputs + sorted(images.glob("output-*.png"))
    if config == "outpaint_walk.yaml":
        return _in_story_order([images / "init.png", *images.glob("frame-*.png")])
    return _in_story_order(images.glob("*.png"))


def _in_story_order(paths: Iterable[Path]) -> list[Path]:
    return sorted(paths, key=lambda path: story_key(path.stem))


def contact_sheet(paths: list[Path], size: int = 64) -> Image.Image:
    side = size * SCALE
    sheet = Image.new("RGB", (len(paths) * (side + GAP) - GAP, side), (255, 255, 255))
    for index, path in enumerate(paths):
        with Image.open(path) as image:
            frame = image.convert("RGB").resize((side, side), Image.Resampling.NEAREST
                                                if image.size[0] == size else Image.Resampling.LANCZOS)
        sheet.paste(frame, (index * (side + GAP), 0))
    return sheet


def main() -> None:
    journeys = {
        "single_inference.yaml": (),
        "visualize_diffusion.yaml": (),
        "random_walk.yaml": (),
        "interpolation.yaml": (),
        "diffevolution.yaml": ("--actions", str(HERE / "diffevolution_actions.txt")),
        "img2img.yaml": (),
        "inpaint.yaml": (),
        "outpaint_walk.yaml": (),
    }
    with tempfile.TemporaryDirectory() as tmp:
        for config, extra in journeys.items():
            session = _run(config, Path(tmp) / config, *extra)
            target = HERE / config.replace(".yaml", ".png")
            contact_sheet(_frames(config, session)).save(target, optimize=True)
            print(f"wrote {target.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
