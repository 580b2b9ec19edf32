"""SPEC §5.3–5.6: the latent journeys, headless, on every config the project ships."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from helpers import COMPAT, ROOT, only_session, run_cli, write_config

QUICK = ["walk_steps=2", "interpolation_steps=2", "num_filler_frames=4", "walk_directions=2"]
CONFIGS = sorted(p.relative_to(ROOT) for p in (ROOT / "configs").glob("*/*.yaml"))


def test_every_original_combination_has_a_config():
    names = {(p.parent.name, p.stem) for p in CONFIGS}
    experiments = ("single_inference", "visualize_diffusion", "random_walk", "interpolation",
                   "diffevolution")
    expected = {(k, e) for k in ("txt2img", "img2img", "inpaint") for e in experiments}
    assert names == expected | {("inpaint", "outpaint_walk")}


# frames each config makes with QUICK: images per prompt 2; walk 2 directions x 3;
# (K-1)*2+K interpolation frames; start + the 1 generation --auto 1 picks from (4 genes);
# start + 4 keyframes x 4
FRAMES = {"single_inference": 2, "random_walk": 6, "diffevolution": 5,
          # every denoising step is a frame: img2img runs int(2 × strength 0.8) of its 2 steps
          ("txt2img", "visualize_diffusion"): 2, ("img2img", "visualize_diffusion"): 1,
          ("inpaint", "visualize_diffusion"): 2,
          "outpaint_walk": 17, ("txt2img", "interpolation"): 7, ("img2img", "interpolation"): 4,
          ("inpaint", "interpolation"): 4}


@pytest.mark.parametrize("config", CONFIGS, ids=[str(c) for c in CONFIGS])
def test_every_config_runs_with_tiny(config, out):
    extra = ["--auto", "1"] if config.stem == "diffevolution" else []
    args = ["run", str(config), "--model", "tiny", "--out", str(out), *extra]
    for item in ["height=64", "width=96", "diffusion_steps=2", *QUICK]:
        args += ["--set", item]
    assert run_cli(*args) == 0
    session = only_session(out)
    manifest = json.loads((session / "session.json").read_text())
    assert manifest["state"] == "done"
    expected = FRAMES.get(config.stem) or FRAMES[(config.parent.name, config.stem)]
    assert manifest["frames_done"] == expected
    pngs = list((session / "images").glob("*.png"))
    assert len(pngs) >= expected
    for png in pngs:
        if "grid" in png.name:
            continue
        with Image.open(png) as image:
            assert image.size[1] * 96 == image.size[0] * 64  # non-square frames keep their shape
    if config.stem in ("random_walk", "interpolation", "diffevolution", "outpaint_walk"):
        assert list((session / "gifs").glob("*.gif")), "journeys write a GIF"
    if config.stem in ("random_walk", "interpolation", "outpaint_walk"):
        assert list((session / "videos").glob("*.mp4")), "long journeys write an MP4"


# interpolation -----------------------------------------------------------------------------------

def _interpolation(tmp_path, **keys):
    base = {"model_identifier": "txt2img", "exp_identifier": "interpolation", "model_id": "tiny",
            "height": 64, "width": 64, "diffusion_steps": 2, "rand_seed": 3, "batch_size": 3,
            "interpolation_steps": 2, "inter_prompts": ["a red fox", "a blue bird", "a green frog"],
            "inter_noises": [11, 12, 13]}
    return write_config(tmp_path / "interp.yaml", **{**base, **keys})


def test_interpolation_frame_count_and_keyframes(tmp_path):
    config = _interpolation(tmp_path)
    assert run_cli("run", str(config), "--out", str(tmp_path / "i")) == 0
    session = only_session(tmp_path / "i")
    names = {p.stem for p in (session / "images").glob("*.png")}
    # the original tool's names, each keyframe once: the end of one segment starts the next
    assert names == {"interpolation_lstitms-0,1_step-start", "interpolation_lstitms-0,1_step-1",
                     "interpolation_lstitms-0,1_step-2", "interpolation_lstitms-0,1_step-end",
                     "interpolation_lstitms-1,2_step-1", "interpolation_lstitms-1,2_step-2",
                     "interpolation_lstitms-1,2_step-end"}
    keyframes = ["interpolation_lstitms-0,1_step-start", "interpolation_lstitms-1,2_step-end"]
    # keyframes rendered alone: single inference with the same prompt and seed
    for index, (prompt, seed) in enumerate([("a red fox", 11), ("a green frog", 13)]):
        alone = write_config(tmp_path / f"alone{index}.yaml", model_identifier="txt2img",
                             exp_identifier="single-inference", model_id="tiny", prompt=prompt,
                             rand_seed=seed, height=64, width=64, diffusion_steps=2)
        assert run_cli("run", str(alone), "--out", str(tmp_path / f"a{index}")) == 0
        single = load_file(next((only_session(tmp_path / f"a{index}") / "embeddings").iterdir()))
        frame = load_file(session / "embeddings" / f"{keyframes[index]}.safetensors")
        gap = (single["image_embed"] - frame["image_embed"]).abs().max() / single["image_embed"].abs().max()
        assert gap <= 1e-4  # rounding of another batch size (see test_engine.ROUNDING)
        assert torch.equal(single["latent_noise"], frame["latent_noise"])


def test_slerp_keeps_the_noise_norm_and_lerp_does_not():
    from lse_core.latents import lerp, make_noise, slerp

    a, b = make_noise(1, 1, 512, 512), make_noise(2, 1, 512, 512)
    middle = slerp(a, b, 0.5)
    assert abs(middle.norm() / a.norm() - 1) < 0.01
    assert lerp(a, b, 0.5).norm() / a.norm() < 0.8  # lerp shrinks independent noises by ~1/sqrt(2)
    assert torch.allclose(slerp(a, b, 0.0), a, atol=1e-5) and torch.allclose(slerp(a, b, 1.0), b, atol=1e-5)


def test_interpolation_mismatched_lists(tmp_path, capsys):
    config = _interpolation(tmp_path, inter_noises=[1, 2])
    assert run_cli("run", str(config), "--out", str(tmp_path / "i")) == 2
    assert "inter_prompts has 3 items but inter_noises has 2" in capsys.readouterr().err
    assert not (tmp_path / "i").exists()


def test_interpolation_item_naming_missing_file_is_an_error(tmp_path, capsys):
    config = _interpolation(tmp_path, inter_prompts=["a fox", "missing/keyframe.safetensors"],
                            inter_noises=[1])
    assert run_cli("run", str(config), "--out", str(tmp_path / "i")) == 2
    assert "inter_prompts[1]': missing/keyframe.safetensors: embedding file not found" in capsys.readouterr().err


@pytest.mark.skipif(not COMPAT.is_dir(), reason="shared/compat not present")
def test_compat_embedding_as_interpolation_keyframe(tmp_path):
    source = str(COMPAT / "img2img_output-0_diffstep-25.pt")
    config = _interpolation(tmp_path, inter_prompts=["a fox", source], inter_noises=[source],
                            interpolation_steps=1, diffusion_steps=1)
    assert run_cli("run", str(config), "--out", str(tmp_path / "i")) == 0
    session = only_session(tmp_path / "i")
    last = load_file(session / "embeddings" / "interpolation_lstitms-0,1_step-end.safetensors")
    original = torch.load(source, weights_only=True)
    assert torch.equal(last["prompt_embed"], original["prompt_embed"].float())
    assert torch.equal(last["latent_noise"], original["latent_noise"].float())
    with Image.open(session / "images" / "interpolation_lstitms-0,1_step-end.png") as image:
        assert image.size == (768, 768)


# random walk -----------------------------------------------------------------------------------

@pytest.mark.parametrize("walk_prompt,walk_noise", [(False, True), (True, False)])
def test_random_walk_moves_only_the_chosen_space(tmp_path, walk_prompt, walk_noise):
    config = write_config(tmp_path / "rw.yaml", model_identifier="txt2img",
                          exp_identifier="random-walk", model_id="tiny", prompt="a lighthouse",
                          height=64, width=64, diffusion_steps=2, rand_seed=5, walk_steps=3,
                          walk_directions=2, step_size=0.1, prompt_rand_walk=walk_prompt,
                          noise_rand_walk=walk_noise)
    assert run_cli("run", str(config), "--out", str(tmp_path / "rw")) == 0
    session = only_session(tmp_path / "rw")
    for direction in range(2):
        names = sorted((session / "images").glob(f"output-0_direction-{direction}_*.png"))
        assert len(names) == 3 + 1
    files = sorted((session / "embeddings").glob("*.safetensors"))
    start = load_file(session / "embeddings" / "output-0_direction-0_randwalkstep-start.safetensors")
    fixed, moving = ("prompt_embed", "latent_noise") if walk_noise else ("latent_noise", "prompt_embed")
    for file in files:
        assert torch.equal(load_file(file)[fixed], start[fixed])
    deltas = []
    for direction in range(2):
        step = [load_file(session / "embeddings" / f"output-0_direction-{direction}_randwalkstep-{k}.safetensors")[moving]
                for k in (1, 3)]
        first = step[0] - start[moving]
        assert 0 < first.abs().max() <= 0.1 + 1e-6  # uniform in [-1, 1] x step_size
        assert torch.allclose(step[1] - start[moving], 3 * first, atol=1e-5)  # one delta, added per step
        deltas.append(first)
    assert not torch.allclose(deltas[0], deltas[1])  # each direction draws its own delta
    with Image.open(session / "gifs" / "output-0.gif") as gif:
        assert gif.n_frames == 2 * 2 * (3 + 1)  # out and back per direction: start…3, 3…start


# outpaint walk ---------------------------------------------------------------------------------

def _outpaint(tmp_path, **keys):
    base = {"model_identifier": "inpaint", "exp_identifier": "outpaint-walk", "model_id": "tiny",
            "height": 64, "width": 64, "diffusion_steps": 2, "translation_factor": 0.25,
            "num_filler_frames": 4, "prompts": ["a coast", "a forest"], "frames_per_prompt": [3, 2],
            "camera_actions": ["right", "down", "left", "up", "backwards"],
            "frames_per_cam_action": [1, 1, 1, 1, 1], "seed_per_frame": [7],
            "image": "resources/landscape.png"}
    return write_config(tmp_path / "op.yaml", **{**base, **keys})


@pytest.mark.parametrize("factor", [0.25, 0.6])
def test_outpaint_keeps_the_shifted_previous_frame(tmp_path, factor):
    config = _outpaint(tmp_path, translation_factor=factor)
    assert run_cli("run", str(config), "--out", str(tmp_path / "op")) == 0
    session = only_session(tmp_path / "op")
    names = {p.stem for p in (session / "images").glob("*.png")}
    # the original tool's names: init, then per keyframe k its fillers and frame-k
    keyframes = ["init"] + [f"frame-{k}" for k in range(5)]
    fillers = {f"{k}_filler_frame_{j}" for k in range(5) for j in (1, 2, 3)}
    assert names == set(keyframes) | fillers
    # the original's margin: int(size × factor) rounded down to a multiple of the filler count
    margin = int(64 * factor) // 4 * 4

    def pixels(image):
        return torch.from_numpy(np.asarray(image.convert("RGB")).copy())

    def opened(name):
        with Image.open(session / "images" / f"{name}.png") as image:
            return image.convert("RGB")

    for action, previous_name, name in zip(["right", "down", "left", "up", "backwards"],
                                           keyframes, keyframes[1:]):
        previous, current = pixels(opened(previous_name)), pixels(opened(name))
        if action == "right":
            assert torch.equal(current[:, : 64 - margin], previous[:, margin:])
        elif action == "left":
            assert torch.equal(current[:, margin:], previous[:, : 64 - margin])
        elif action == "down":
            assert torch.equal(current[: 64 - margin], previous[margin:])
        elif action == "up":
            assert torch.equal(current[margin:], previous[: 64 - margin])
        else:
            # The original shrinks the previous frame by one margin (not two) and centres it,
            # half a margin in on each side; lse resamples with Lanczos.
            side = 64 - margin
            shrunk = pixels(opened(previous_name).resize((side, side), Image.Resampling.LANCZOS))
            kept = current[margin // 2 : margin // 2 + side, margin // 2 : margin // 2 + side]
            assert torch.equal(kept, shrunk)


def test_seeds_continue_after_the_last_one_given(tmp_path):
    assert run_cli("run", str(_outpaint(tmp_path, seed_per_frame=[7, 20])), "--out", str(tmp_path / "op")) == 0
    session = only_session(tmp_path / "op")
    from lse_core.latents import make_noise

    keyframes = [session / "embeddings" / f"frame-{k}.safetensors" for k in range(5)]
    seeds = [7, 20, 21, 22, 23]
    for file, seed in zip(keyframes, seeds):
        assert torch.equal(load_file(file)["latent_noise"], make_noise(seed, 1, 64, 64))


@pytest.mark.parametrize("keys,message", [
    ({"frames_per_prompt": [3]}, "prompts has 2 items but frames_per_prompt has 1"),
    ({"frames_per_cam_action": [1, 1]}, "camera_actions has 5 items but frames_per_cam_action has 2"),
    ({"frames_per_prompt": [3, 3]}, "frames_per_prompt covers 6 frames but frames_per_cam_action covers 5"),
    ({"camera_actions": ["right", "sideways", "left", "up", "down"]}, "key 'camera_actions.1'"),
    ({"model_identifier": "txt2img"}, "outpaint-walk needs model_identifier: inpaint"),
])
def test_outpaint_schedule_errors(tmp_path, capsys, keys, message):
    assert run_cli("run", str(_outpaint(tmp_path, **keys)), "--out", str(tmp_path / "op")) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "op").exists()


# diffevolution -----------------------------------------------------------------------------------

SCRIPT = ["1", "", ";;a storm over the sea|blurry", ";3", "back 1", "2", "exit"]


def _evolve(tmp_path, label: str) -> tuple:
    config = write_config(tmp_path / "evo.yaml", model_identifier="txt2img",
                          exp_identifier="diffevolution", model_id="tiny", prompt="a calm sea",
                          height=64, width=64, diffusion_steps=2, rand_seed=9,
                          genes_per_generation=3, step_size=0.4, batch_size=2)
    actions = tmp_path / "actions.txt"
    actions.write_text("\n".join(SCRIPT) + "\n")
    assert run_cli("run", str(config), "--out", str(tmp_path / label), "--actions", str(actions)) == 0
    session = only_session(tmp_path / label)
    return session, json.loads((session / "session.json").read_text())


def test_diffevolution_scripted_sequence(tmp_path):
    session, manifest = _evolve(tmp_path, "a")
    evo = manifest["diffevolution"]
    # start, gen1 pick 1 -> node 1; gen2 re-roll; gen3 new target; gen4-6 auto picks (3 nodes);
    # gen7 back to node 1; gen8 pick 2 -> a branch from node 1, the script's last answer
    lineage = evo["lineage"]
    assert [n["parent"] for n in lineage] == [None, 0, 1, 2, 3, 1]
    assert evo["target_prompt"] == "a storm over the sea|blurry"
    assert evo["current"] == 5 and evo["generations"] == 8
    # the original tool's names: generation, the parent's gene ("start" for the first), gene
    assert lineage[1]["name"] == "difevostep-1_parent-start_gene-1"
    assert lineage[5]["name"] == "difevostep-8_parent-1_gene-2"
    genes = list((session / "images").glob("difevostep-*_gene-*.png"))
    assert len(genes) == 8 * 3, "no generation is rendered after the script's last answer"
    with Image.open(session / "gifs" / "output-0.gif") as gif:
        assert gif.n_frames == 3  # start -> node 1 -> node 5
    same, _ = _evolve(tmp_path, "b")
    for png in (session / "images").glob("*.png"):
        assert png.read_bytes() == (same / "images" / png.name).read_bytes()


def test_diffevolution_genes_move_towards_the_target(tmp_path):
    from lse_core.latents import encode_prompt, slerp
    from lse_core.models import load_model

    session, manifest = _evolve(tmp_path, "a")
    embed = lambda name: load_file(session / "embeddings" / f"{name}.safetensors")  # noqa: E731
    start, node1 = embed("difevostep-start"), embed(manifest["diffevolution"]["lineage"][1]["name"])
    # before a new target is given, the target is the start prompt: the prompt stays put
    assert torch.allclose(node1["prompt_embed"], start["prompt_embed"], atol=1e-5)
    assert not torch.equal(node1["latent_noise"], start["latent_noise"])
    # generation 3 is answered ";;a storm over the sea|blurry": generation 4 moves towards it
    genes = [embed(f"difevostep-4_parent-1_gene-{i}") for i in range(3)]
    model = load_model("tiny", False, torch.device("cpu"), torch.float32)
    target = encode_prompt(model, "a storm over the sea", "blurry").tokens
    expected = slerp(node1["prompt_embed"], target, 0.4)
    parent_noise = node1["latent_noise"].flatten()
    for gene in genes:
        assert torch.allclose(gene["prompt_embed"], expected, atol=1e-4)
        # slerp by 0.4 towards fresh noise, which is about 90° away in this many dimensions:
        # the gene sits about 36° from its parent (cos ≈ 0.81; 0.6 would mean a step of 0.6)
        cos = torch.nn.functional.cosine_similarity(gene["latent_noise"].flatten(), parent_noise, dim=0)
        assert 0.74 < cos < 0.88, cos
    assert not torch.equal(genes[0]["latent_noise"], genes[1]["latent_noise"])


def test_diffevolution_bad_action_file(tmp_path, capsys):
    config = write_config(tmp_path / "evo.yaml", model_identifier="txt2img",
                          exp_identifier="diffevolution", model_id="tiny", prompt="sea",
                          genes_per_generation=3)
    actions = tmp_path / "actions.txt"
    actions.write_text("1\n7\n")
    assert run_cli("run", str(config), "--actions", str(actions), "--out", str(tmp_path / "e")) == 2
    assert "line 2: gene must be a number from 0 to 2" in capsys.readouterr().err


def test_a_prompt_that_matches_a_file_name_stays_a_prompt(tmp_path, monkeypatch):
    (tmp_path / "cat").write_text("not a prompt file")
    monkeypatch.chdir(tmp_path)
    config = _interpolation(tmp_path, inter_prompts=["cat", "dog"], inter_noises=[1],
                            interpolation_steps=0)
    assert run_cli("run", str(config), "--out", str(tmp_path / "i")) == 0
    stored = (only_session(tmp_path / "i") / "configs" / "config.yaml").read_text()
    assert "- cat\n" in stored
