"""Property: whatever a config holds, `lse run` ends in a finished session (exit 0) or in
one line on stderr with exit 2 and no session — never a traceback, never a crash."""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from helpers import run_cli, write_config
from lse_core.config import KNOWN_KEYS

SMALL = {"model_id": "tiny", "height": 64, "width": 64, "diffusion_steps": 1, "rand_seed": 1}
IMAGE = {"image": "resources/landscape.png"}
MASK = {**IMAGE, "mask": "resources/landscape_mask.png"}
# One cheap, valid config per experiment; each example changes one or two keys of one.
BASES = [
    {"model_identifier": "txt2img", "exp_identifier": "single-inference", "prompt": "a lighthouse"},
    {"model_identifier": "img2img", "exp_identifier": "visualize-diffusion", "prompt": "a", **IMAGE},
    {"model_identifier": "txt2img", "exp_identifier": "random-walk", "prompt": "a", "walk_steps": 1,
     "noise_rand_walk": True},
    {"model_identifier": "inpaint", "exp_identifier": "interpolation", "inter_prompts": ["a", "b"],
     "inter_noises": [1, 2], "interpolation_steps": 1, **MASK},
    {"model_identifier": "txt2img", "exp_identifier": "diffevolution", "prompt": "a",
     "genes_per_generation": 2},
    {"model_identifier": "inpaint", "exp_identifier": "outpaint-walk", "prompts": ["a"],
     "frames_per_prompt": [1], "camera_actions": ["backwards"], "frames_per_cam_action": [1],
     "num_filler_frames": 2, **IMAGE},
]

# Whole numbers avoid the valid middle of every range (a valid 4096-pixel side or 1000
# steps would only make the run slow): zero and below, 1 to 3, and huge.
WHOLE = st.one_of(st.integers(max_value=0), st.integers(1, 3), st.integers(min_value=5000))
SCALAR = st.one_of(
    st.none(), st.booleans(), WHOLE,
    st.floats(allow_nan=True, allow_infinity=True), st.floats(0, 1),
    st.text(max_size=200),
    st.sampled_from(["None", "", "tiny", "../../etc/passwd", "resources/landscape.png",
                     "nope.safetensors", "x.pt", "1e309", "a/b", "Euler", "slerp", "right",
                     "backwards", "txt2img", "inpaint", "diffevolution"]),
)
VALUE = st.one_of(SCALAR, st.lists(SCALAR, max_size=3), st.dictionaries(st.text(max_size=5), SCALAR))
KEY = st.sampled_from([*KNOWN_KEYS, "difusion_steps", "Prompt", "", "☃"])


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(base=st.sampled_from(BASES), changes=st.dictionaries(KEY, VALUE, min_size=1, max_size=1)
       | st.dictionaries(KEY, VALUE, min_size=2, max_size=2))
def test_any_config_ends_cleanly(base, changes):
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "sessions"
        config = write_config(Path(folder) / "exp.yaml", **{**SMALL, **base, **changes})
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = run_cli("run", str(config), "--out", str(out))
        event(f"exit {code}")  # --hypothesis-show-statistics shows the mix
        lines = [line for line in err.getvalue().splitlines() if line.strip()]
        sessions = [p for p in out.iterdir() if not p.name.startswith(".")] if out.is_dir() else []
        if code == 0:
            assert [json.loads((s / "session.json").read_text())["state"] for s in sessions] == ["done"]
        else:
            assert code == 2, err.getvalue()
            assert len(lines) == 1 and lines[0].startswith("lse: "), err.getvalue()
            assert len(lines[0]) < 600
            assert not sessions, "a refused config must leave no session"
