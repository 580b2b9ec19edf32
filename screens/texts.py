"""One-line descriptions of the experiments, shown on the home screen and in forms."""

from rich.text import Text

from lse_core.errors import printable
from lse_core.progress import count  # noqa: F401 - the screens' plurals are the CLI's


def plain(text: object) -> Text:
    """Outside text (a file or folder name, a session's fields, a config value, a message
    quoting them) as a widget shows it: control characters escaped (line breaks stay
    line breaks: a widget draws them itself), and never read as Textual markup (``[/]``
    in a name would otherwise break the screen)."""
    return Text("\n".join(printable(line) for line in str(text).split("\n")), end="")

DESCRIPTIONS = {
    "single-inference": "Images from one prompt embedding and one noise tensor.",
    "visualize-diffusion": "Decode the latents after every denoising step: frames, GIF, grid.",
    "random-walk": "Walk from one image in random directions through prompt and/or noise space.",
    "interpolation": "Slerp/lerp between keyframe prompts and noises.",
    "diffevolution": "Pick a gene each generation; the lineage becomes a GIF.",
    "outpaint-walk": "Move a camera over an image, inpainting the uncovered bands (inpaint only).",
}
