"""The README's contact sheets: one journey per experiment with the trained ``tiny`` model.

    python docs/tiny/contact_sheets.py                # every experiment's sheet
    python docs/tiny/contact_sheets.py --transitions  # only transitions.png

Runs each config next to this file with ``lse run`` (64×64, the model's native
size) and lays the journey's frames out in one row, each frame doubled in size.
``transitions.png`` runs interpolation.yaml three ways, one row each: the default
(uniform spacing, every frame denoised in full), ``interpolation_spacing:
perceptual`` and ``transition: blend``.
"""

from __future__ import annotations

import itertools
import json
import sys
import tempfile
from pathlib import Path

from PIL import Image

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
    """The journey's frames in the order the experiment shows them, from its frame records."""
    from lse_core.session import Session

    records = Session.open(session).frames()
    if config == "visualize_diffusion.yaml":  # the first image's denoising steps
        records = _until(records, lambda r: r.role == "grid")
    if config == "random_walk.yaml":  # the first direction: up to the next direction's start
        records = records[:1] + _until(records[1:], lambda r: r.role == "start")
    if config == "diffevolution.yaml":
        lineage = json.loads((session / "session.json").read_text())["diffevolution"]["lineage"]
        names = [node["name"] for node in lineage]
        records = sorted((r for r in records if r.name in names), key=lambda r: names.index(r.name))
    if config == "outpaint_walk.yaml":
        records = [r for r in records if r.role in ("start", "keyframe")]
    paths = [session / "images" / f"{r.name}.png" for r in records]
    if config == "img2img.yaml":
        return [ROOT / "resources" / "shapes.png", *paths]
    if config == "inpaint.yaml":
        return [ROOT / "resources" / "shapes.png", ROOT / "resources" / "shapes_mask.png", *paths]
    return paths


def _until(records: list, stop) -> list:
    return list(itertools.takewhile(lambda record: not stop(record), records))


def contact_sheet(paths: list[Path], size: int = 64) -> Image.Image:
    side = size * SCALE
    sheet = Image.new("RGB", (len(paths) * (side + GAP) - GAP, side), (255, 255, 255))
    for index, path in enumerate(paths):
        with Image.open(path) as image:
            frame = image.convert("RGB").resize((side, side), Image.Resampling.NEAREST
                                                if image.size[0] == size else Image.Resampling.LANCZOS)
        sheet.paste(frame, (index * (side + GAP), 0))
    return sheet


# The rows of transitions.png: interpolation.yaml with these keys added.
TRANSITIONS = {"full": (), "perceptual": ("--set", "interpolation_spacing=perceptual"),
               "blend": ("--set", "transition=blend")}


def transitions_sheet(tmp: Path) -> None:
    rows = []
    for mode, extra in TRANSITIONS.items():
        session = _run("interpolation.yaml", tmp / f"transitions-{mode}", *extra)
        rows.append(contact_sheet(_frames("interpolation.yaml", session)))
    sheet = Image.new("RGB", (max(r.width for r in rows), sum(r.height + GAP for r in rows) - GAP),
                      (255, 255, 255))
    for index, row in enumerate(rows):
        sheet.paste(row, (0, index * (row.height + GAP)))
    target = HERE / "transitions.png"
    sheet.save(target, optimize=True)
    print(f"wrote {target.relative_to(ROOT)}")


def main() -> None:
    if sys.argv[1:] == ["--transitions"]:
        with tempfile.TemporaryDirectory() as tmp:
            transitions_sheet(Path(tmp))
        return
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
        transitions_sheet(Path(tmp))


if __name__ == "__main__":
    main()
