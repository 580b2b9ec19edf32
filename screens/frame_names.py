"""Frames in story order, with labels people read rather than file names.

A frame's file name (the original tool's: ``direction-1_randwalkstep-3``,
``lstitms-0,1_step-end``, ``difevostep-1_parent-start_gene-0``, an outpaint walk's
``init`` and ``{k}_filler_frame_{j}`` before its keyframe ``frame-{k}``) says where it
sits in its experiment; sorting by its numbers puts the frames in the order they tell
the story, whatever order they were made in (an outpaint keyframe is made before the
fillers that lead up to it).
"""

from __future__ import annotations

import re

_NUMBERS = re.compile(r"(\d+)")
# "start" (or the original's "init") is step 0 of whatever it starts.
_START = re.compile(r"(?<![a-z])(start|init)(?![a-z])")
# The original tool's outpaint names: fillers j of keyframe k, then keyframe k itself.
_FILLER = re.compile(r"(\d+)_filler_frame_(\d+)")
_KEYFRAME = re.compile(r"frame-(\d+)")
_AFTER_ITS_FILLERS = 10**9

# How the words of file names read in a list.
_WORDS = {
    "output": "image",
    "diffstep": "step",
    "randwalkstep": "step",
    "lstitms": "between",
    "difevostep": "gen",
    "diffusion-grid": "all steps (grid)",
}
_PART = re.compile(r"(?P<word>[a-z-]+?)-(?P<value>\d+(?:,\d+)*|start|end)")


def story_key(name: str) -> list[int | str]:
    """Sort key: numbers compare as numbers, ``start`` comes before step 1."""
    if match := _FILLER.fullmatch(name):
        name = f"frame-{match[1]}_{match[2]}"
    elif match := _KEYFRAME.fullmatch(name):
        name = f"frame-{match[1]}_{_AFTER_ITS_FILLERS}"
    parts = _NUMBERS.split(_START.sub("0", name))
    # split() alternates text and digits, so equal positions always hold equal types.
    return [int(part) if i % 2 else part for i, part in enumerate(parts)]


def frame_label(name: str) -> str:
    """``output-0_direction-1_randwalkstep-3`` → ``image 0 · direction 1 · step 3``."""
    if name == "init":
        return "start"
    if match := _FILLER.fullmatch(name):
        return f"keyframe {match[1]} · filler {match[2]}"
    if match := _KEYFRAME.fullmatch(name):
        return f"keyframe {match[1]}"
    words = []
    for part in name.split("_"):
        match = _PART.fullmatch(part)
        if match is None:
            words.append(_WORDS.get(part, part))
            continue
        word, value = _WORDS.get(match["word"], match["word"]), match["value"]
        if value in ("start", "end"):
            words.append(value if word in ("gen", "step") else f"{word} {value}")
            continue
        numbers = [str(int(n)) for n in value.split(",")]
        words.append(f"{word} {'→'.join(numbers)}".strip())
    return " · ".join(words)
