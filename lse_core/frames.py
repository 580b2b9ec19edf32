"""A frame as data: what an experiment says about each frame it makes.

Experiments describe every frame when they plan it — its file name, its place in
the story, a short label, its role and the frame it was made from — and the
session stores these records, so the run view, the sessions browser and the
contact sheets read them instead of guessing from file names.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

# A frame or media name is one plain file name inside the session's folders.
PLAIN_NAME = re.compile(r"\w[\w.,+-]*")
MAX_LABEL = 60

ROLES = (
    "image",     # single-inference: one of the images
    "start",     # where a journey starts (walk origin, diffevolution start, outpaint input)
    "step",      # a walk step, or one denoising step of visualize-diffusion
    "keyframe",  # interpolation and outpaint keyframes
    "between",   # an interpolation frame between two keyframes
    "filler",    # an outpaint frame sliding from one keyframe to the next (no diffusion)
    "gene",      # a diffevolution candidate
    "grid",      # visualize-diffusion's sheet of all steps
    "frame",     # a frame of a session made before frames were recorded
)


@dataclass(frozen=True, slots=True)
class FrameRecord:
    name: str  # the file stem in images/ and embeddings/
    position: int  # its place in the story the experiment tells (sorting key)
    label: str  # one short line for lists, e.g. "dir 0 · step 5"
    role: str
    parent: str | None = None  # the frame it was made from (lineage), if any
    # Interpolation: where the frame sits on the journey, in keyframes (keyframe k at k,
    # an in-between of segment k at k + its interpolation weight); None elsewhere.
    t: float | None = None

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        if self.t is None:  # records without a place on a journey keep their five keys
            del data["t"]
        return data

    @classmethod
    def from_json(cls, data: Any) -> "FrameRecord":
        """A stored record, checked (``ValueError`` when it is not one lse wrote)."""
        keys = {"name", "position", "label", "role", "parent"}
        if not isinstance(data, dict) or set(data) - {"t"} != keys:
            raise ValueError("a frame record has the keys name, position, label, role, parent "
                             "(and t on a journey)")
        record = cls(**data)
        if record.t is not None and (isinstance(record.t, bool) or not isinstance(record.t, (int, float))
                                     or not 0 <= record.t < float("inf")):
            raise ValueError("a frame record's t is not a finite number ≥ 0")
        if not isinstance(record.name, str) or not PLAIN_NAME.fullmatch(record.name):
            raise ValueError("a frame record's name is not a plain file name")
        if not isinstance(record.parent, (str, type(None))) or (
                record.parent is not None and not PLAIN_NAME.fullmatch(record.parent)):
            raise ValueError("a frame record's parent is not a plain file name")
        if isinstance(record.position, bool) or not isinstance(record.position, int) or record.position < 0:
            raise ValueError("a frame record's position is not a whole number ≥ 0")
        if (not isinstance(record.label, str) or len(record.label) > MAX_LABEL
                or not record.label.isprintable()):
            raise ValueError(f"a frame record's label is not a printable text of at most "
                             f"{MAX_LABEL} characters")
        if record.role not in ROLES:
            raise ValueError("a frame record's role is unknown")
        return record


def in_story_order(records: Any) -> list[FrameRecord]:
    return sorted(records, key=lambda record: (record.position, record.name))
