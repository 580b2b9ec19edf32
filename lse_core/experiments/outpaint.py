"""outpaint-walk (SPEC §5.6, inpaint only): a camera moving over an image that keeps growing.

Each keyframe shifts the previous one by a margin in the camera's direction,
inpaints the uncovered band and keeps the old pixels elsewhere; filler frames
slide (or zoom) from one keyframe to the next without diffusion.
"""

from __future__ import annotations

from functools import partial

from PIL import Image

from ..engine import FrameInput
from ..errors import BadInput
from ..frames import FrameRecord
from .base import Experiment, FrameJob, Media, Plan, Render, SaveImages
from .inputs import content_key


def shifted_canvas(image: Image.Image, action: str, mx: int, my: int) -> tuple[Image.Image, Image.Image]:
    """The previous frame moved for ``action`` and the mask (white) of what must be painted."""
    width, height = image.size
    canvas = Image.new("RGB", (width, height))
    mask = Image.new("L", (width, height), 0)
    if action == "right":
        canvas.paste(image.crop((mx, 0, width, height)), (0, 0))
        mask.paste(255, (width - mx, 0, width, height))
    elif action == "left":
        canvas.paste(image.crop((0, 0, width - mx, height)), (mx, 0))
        mask.paste(255, (0, 0, mx, height))
    elif action == "down":
        canvas.paste(image.crop((0, my, width, height)), (0, 0))
        mask.paste(255, (0, height - my, width, height))
    elif action == "up":
        canvas.paste(image.crop((0, 0, width, height - my)), (0, my))
        mask.paste(255, (0, 0, width, my))
    else:  # backwards: the old frame shrinks by one margin, centred; the border is new
        small = image.resize((width - mx, height - my), Image.Resampling.LANCZOS)
        left, top = mx // 2, my // 2
        canvas.paste(small, (left, top))
        mask.paste(255, (0, 0, width, height))
        mask.paste(0, (left, top, left + small.width, top + small.height))
    return canvas, mask


def filler_frames(previous: Image.Image, new: Image.Image, action: str, mx: int, my: int,
                  count: int) -> list[Image.Image]:
    """``count - 1`` frames moving the view from ``previous`` to ``new`` in equal pixel steps."""
    width, height = previous.size
    frames = []
    for j in range(1, count):
        if action == "backwards":
            # Zooming out: the view grows from the previous frame's place in the new one
            # (half a margin in on each side) to the whole new frame.
            grow_x, grow_y = mx // count * j, my // count * j
            box = (mx // 2 - grow_x // 2, my // 2 - grow_y // 2,
                   width - mx // 2 + grow_x // 2, height - my // 2 + grow_y // 2)
            frames.append(new.crop(box).resize((width, height), Image.Resampling.LANCZOS))
            continue
        horizontal = action in ("right", "left")
        margin = mx if horizontal else my
        size = (width + mx, height) if horizontal else (width, height + my)
        strip = Image.new("RGB", size)
        offset = (margin, 0) if horizontal else (0, margin)
        forward = action in ("right", "down")
        # The later image is pasted last: outside its mask it equals the earlier one.
        strip.paste(previous if forward else new, (0, 0))
        strip.paste(new if forward else previous, offset)
        step = margin * j // count if forward else margin - margin * j // count
        box = (step, 0, step + width, height) if horizontal else (0, step, width, step + height)
        frames.append(strip.crop(box))
    return frames


def _expand(items: list, counts: list[int]) -> list:
    return [item for item, count in zip(items, counts) for _ in range(count)]


class OutpaintWalk(Experiment):
    def prepare(self) -> None:
        cfg = self.cfg
        self.height, self.width = self.inputs.size()
        fillers = cfg.num_filler_frames
        # Margins are multiples of the filler count so every filler moves whole pixels.
        self.mx = int(cfg.translation_factor * self.width) // fillers * fillers
        self.my = int(cfg.translation_factor * self.height) // fillers * fillers
        if self.mx == 0 or self.my == 0:
            raise BadInput(f"translation_factor × size ({cfg.translation_factor} × "
                           f"{min(self.width, self.height)}) is below num_filler_frames ({fillers}); "
                           "raise translation_factor or lower num_filler_frames",
                           key="translation_factor")
        start = self.inputs.image("image").convert("RGB")
        self.start = start.resize((self.width, self.height), Image.Resampling.LANCZOS)
        prompts = [self.inputs.prompt(p, f"prompts[{i}]") for i, p in enumerate(cfg.prompts)]
        self.prompts = _expand(prompts, cfg.frames_per_prompt)
        self.actions = _expand(cfg.camera_actions, cfg.frames_per_cam_action)
        given = cfg.seed_per_frame or [self.seed]
        self.seeds = [given[k] if k < len(given) else given[-1] + k - len(given) + 1
                      for k in range(len(self.actions))]

    @property
    def frames_planned(self) -> int:
        return 1 + len(self.actions) * self.cfg.num_filler_frames

    def split_note(self, batch_size: int, ranks: int) -> str | None:
        return ("outpaint-walk inpaints its keyframes one after another (each grows from the "
                f"last), so one of the {ranks} ranks renders while the others wait; the filler "
                "frames are split among them")

    def plan(self) -> Plan:
        # The original tool's file names: init, then per keyframe k its fillers
        # {k}_filler_frame_{j} and the keyframe frame-{k}. Each keyframe is made before
        # the fillers that lead up to it, and comes after them in the story.
        fillers = self.cfg.num_filler_frames
        start = FrameRecord("init", 0, "start", "start")
        names = [start.name]
        yield SaveImages([(start, self.start)])
        previous, previous_name = self.start, start.name
        for k, (prompt, action, seed) in enumerate(zip(self.prompts, self.actions, self.seeds)):
            canvas, mask = shifted_canvas(previous, action, self.mx, self.my)
            conditioning = self.engine.prepare_conditioning(
                content_key(canvas, mask), canvas, self.height, self.width, mask)
            noise = self.inputs.noise_for_seed(seed, 1, (self.height, self.width))
            first = 1 + k * fillers  # the story position of this keyframe's first filler
            key = FrameRecord(f"frame-{k}", first + fillers - 1, f"key {k}", "keyframe", previous_name)
            frame = FrameInput(prompt, noise, seed, conditioning)
            job = FrameJob(key, lambda frame=frame: frame,
                           finish=partial(Image.composite, image2=canvas, mask=mask))
            [rendered] = yield Render([job], self.settings(), results=True)
            between = filler_frames(previous, rendered.image, action, self.mx, self.my, fillers)
            records = [FrameRecord(f"{k}_filler_frame_{j}", first + j - 1, f"key {k} · filler {j}",
                                   "filler", previous_name) for j in range(1, len(between) + 1)]
            if between:
                yield SaveImages(list(zip(records, between)))
            names += [r.name for r in records] + [key.name]
            previous, previous_name = rendered.image, key.name
        yield Media("output-0", names, video=True)
