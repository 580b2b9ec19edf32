"""Draws the demo inputs in this folder (run once; the PNGs are committed)."""

from pathlib import Path

from PIL import Image, ImageDraw

HERE = Path(__file__).parent
SIZE = 512


def landscape() -> Image.Image:
    image = Image.new("RGB", (SIZE, SIZE))
    draw = ImageDraw.Draw(image)
    for y in range(SIZE):  # dusk sky fading into the horizon
        t = y / SIZE
        draw.line([(0, y), (SIZE, y)], fill=(int(40 + 180 * t), int(60 + 90 * t), int(140 - 60 * t)))
    draw.ellipse([300, 90, 400, 190], fill=(250, 210, 120))
    draw.polygon([(0, 360), (140, 220), (260, 340), (380, 200), (512, 330), (512, 512), (0, 512)],
                 fill=(50, 70, 60))
    draw.rectangle([0, 430, SIZE, SIZE], fill=(40, 90, 130))
    return image


def centre_mask() -> Image.Image:
    mask = Image.new("L", (SIZE, SIZE), 0)
    ImageDraw.Draw(mask).ellipse([160, 160, 352, 352], fill=255)
    return mask


def shapes() -> Image.Image:
    """A scene the trained ``tiny`` model knows: a red circle on the left on a white background."""
    image = Image.new("RGB", (SIZE, SIZE), (255, 255, 255))
    ImageDraw.Draw(image).ellipse([40, 140, 270, 370], fill=(220, 30, 30))
    return image


def shapes_mask() -> Image.Image:
    """Covers the circle of ``shapes()``, for repainting it."""
    mask = Image.new("L", (SIZE, SIZE), 0)
    ImageDraw.Draw(mask).rectangle([16, 116, 294, 394], fill=255)
    return mask


if __name__ == "__main__":
    landscape().save(HERE / "landscape.png")
    centre_mask().save(HERE / "landscape_mask.png")
    shapes().save(HERE / "shapes.png")
    shapes_mask().save(HERE / "shapes_mask.png")
