"""One-line descriptions of the experiments, shown on the home screen and in forms."""

DESCRIPTIONS = {
    "single-inference": "Images from one prompt embedding and one noise tensor.",
    "visualize-diffusion": "Decode the latents after every denoising step: frames, GIF, grid.",
    "random-walk": "Walk from one image in random directions through prompt and/or noise space.",
    "interpolation": "Slerp/lerp between keyframe prompts and noises.",
    "diffevolution": "Pick a gene each generation; the lineage becomes a GIF.",
    "outpaint-walk": "Move a camera over an image, inpainting the uncovered bands (inpaint only).",
}


def count(n: int, noun: str) -> str:
    """``1 frame``, ``2 frames``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"
