"""interpolation (SPEC §5.4): keyframes of prompts and/or noises, in-between frames slerped.

Three ways to make the in-betweens (lse's own keys; the defaults are the original's):

- ``interpolation_spacing: uniform``, ``transition: full``: evenly spaced in t, each
  denoised in full from the interpolated noise and prompt (the original tool).
- ``interpolation_spacing: perceptual``: a coarse pass (the uniform journey at half the
  steps, measured, never saved) tells how much the picture changes along each segment;
  the in-betweens are then placed at equal steps of that change, and rendered in full.
  The coarse pass costs half the UNet work of the uniform journey.
- ``transition: blend`` (latent blending): the keyframes are denoised in full and their
  latents kept at a branch step; each in-between starts from the slerp of its two
  neighbours' latents there and runs only the remaining steps. In-betweens are inserted,
  round by round, into the gaps whose neighbours differ most (``transitions``).
"""

from __future__ import annotations

import math
from dataclasses import replace
from functools import partial
from typing import Any, Callable, Iterator

import torch

from ..engine import FrameInput, RenderSettings, first_step
from ..errors import BadInput
from ..frames import FrameRecord
from ..latents import PromptEmbedding, interpolate, slerp
from .base import Experiment, FrameJob, Media, Plan, Record, Render
from .transitions import BlendNode, next_gaps, picture_distance, place_evenly

# Latent blending branches in-betweens off after this fraction of a keyframe's steps: the
# later, the cheaper the in-betweens and the closer they stay to their neighbours.
BRANCH_FRACTION = 0.7
# Blend positions: keyframe k at k × POSITION_SCALE, an in-between by its t (midpoints of
# midpoints stay whole numbers for 32 levels of insertion).
POSITION_SCALE = 2**32
# The original tool's frame names (its latest commit); sessions lse made before it used
# them keep their first commit's, ``output-0_lstitms-…``, so their resumes find their frames.
PREFIX, FIRST_PREFIX = "interpolation", "output-0"


class Interpolation(Experiment):
    def prepare(self) -> None:
        cfg = self.cfg
        prompt_items, noise_items = cfg.inter_prompts, cfg.inter_noises
        prompts = [self.inputs.prompt(item, f"inter_prompts[{i}]") for i, item in enumerate(prompt_items)]
        noises = [self.inputs.noise_item(item, f"inter_noises[{i}]") for i, item in enumerate(noise_items)]
        for i, noise in enumerate(noises[1:], start=1):
            if noise.shape != noises[0].shape:
                raise BadInput(f"key 'inter_noises[{i}]': noise shape {tuple(noise.shape)} differs "
                               f"from inter_noises[0] {tuple(noises[0].shape)}", key="inter_noises")
        self.prompts, self.noises = prompts, noises
        self.conditioning = self.inputs.conditioning(self.inputs.pixel_size(noises[0]))
        self.keys = max(len(prompts), len(noises))
        # A session records the names it uses; one without the record predates them.
        resumed_before = self.saved and self.saved.get("frame_names") != PREFIX
        self.prefix = FIRST_PREFIX if resumed_before else PREFIX

    @property
    def frames_planned(self) -> int:
        return (self.keys - 1) * (self.cfg.interpolation_steps + 1) + 1

    # the plan -------------------------------------------------------------------
    def plan(self) -> Plan:
        if self.prefix == PREFIX:
            yield Record({"frame_names": PREFIX})
        if self.cfg.transition == "blend":
            yield from self._blend_plan()
            return
        places = None
        if self.cfg.interpolation_spacing == "perceptual" and self.cfg.interpolation_steps:
            places = yield from self._perceptual_places()
        yield Render(self._jobs(places), self.settings())
        yield Media("output-0", [job.name for job in self._jobs(places)], video=True)

    def _jobs(self, places: list[list[float]] | None = None) -> Iterator[FrameJob]:
        """Keyframe 0, then per segment its in-between frames and its end keyframe (a
        keyframe between two segments is rendered once, as the end of the one before).
        ``places``: each segment's in-between t (default: evenly spaced)."""
        between = self.cfg.interpolation_steps
        yield self._job(self._key_record(0), partial(self._keyframe, 0))
        for k in range(self.keys - 1):
            ts = places[k] if places is not None else [s / (between + 1) for s in range(1, between + 1)]
            for step, t in enumerate(ts, start=1):
                yield self._job(self._between_record(k, step, t, k * (between + 1) + step,
                                                     places is not None),
                                partial(self._between, k, t))
            yield self._job(self._key_record(k + 1, (k + 1) * (between + 1)),
                            partial(self._keyframe, k + 1))

    def _key_record(self, k: int, position: int = 0) -> FrameRecord:
        return FrameRecord(self._name(max(0, k - 1), "start" if k == 0 else "end"), position,
                           f"key {k}", "keyframe", t=float(k))

    def _between_record(self, k: int, step: int, t: float, position: int,
                        placed: bool) -> FrameRecord:
        """``placed``: t was chosen by perceptual spacing or blending, so the label gives it
        (a uniform journey's step number says where the frame is)."""
        key = self._name(k, "start") if k == 0 else self._name(k - 1, "end")
        label = f"key {k}→{k + 1} · t {t:.3f}" if placed else f"key {k}→{k + 1} · {step}"
        return FrameRecord(self._name(k, str(step)), position, label, "between", key, t=k + t)

    def _name(self, segment: int, step: str) -> str:
        return f"{self.prefix}_lstitms-{segment},{segment + 1}_step-{step}"

    @staticmethod
    def _item(values: list, k: int):
        return values[k] if len(values) > 1 else values[0]

    def _between(self, k: int, t: float) -> tuple[PromptEmbedding, torch.Tensor]:
        method = self.cfg.interpolation_method
        # Per sample and in float32: fp16 norms overflow.
        prompts, noises = self.prompts, self.noises
        prompt = prompts[k].interpolate(prompts[k + 1], t, method) if len(prompts) > 1 else prompts[0]
        noise = interpolate(noises[k], noises[k + 1], t, method) if len(noises) > 1 else noises[0]
        return prompt, noise

    def _keyframe(self, k: int) -> tuple[PromptEmbedding, torch.Tensor]:
        return self._item(self.prompts, k), self._item(self.noises, k)

    def _job(self, record: FrameRecord, tensors: Callable[[], tuple[PromptEmbedding, torch.Tensor]],
             start: Callable[[], torch.Tensor] | None = None,
             seed_position: int | None = None) -> FrameJob:
        """``start``: latent blending's starting latents; ``seed_position``: the place that
        seeds the frame when its record's position is not its place in a uniform journey."""
        place = record.position if seed_position is None else seed_position

        def make() -> FrameInput:
            prompt, noise = tensors()
            # Frames are seeded by their place in the journey.
            return FrameInput(prompt, noise, step_seed=(self.seed + place) % 2**63,
                              conditioning=self.conditioning,
                              start_latents=start() if start is not None else None)

        return FrameJob(record, make)

    # perceptual spacing -----------------------------------------------------------
    def _perceptual_places(self) -> Any:
        """Each segment's in-between t, evenly spaced in picture change as the coarse pass
        measures it. The coarse pass is never saved, so a resume renders it again: it is
        deterministic, and the resumed journey places its frames exactly as before."""
        coarse = self.coarse_settings()
        jobs = list(self._jobs())
        rendered = yield Render(iter(jobs), coarse, results=True, keep=False)
        per_segment = self.cfg.interpolation_steps + 1
        places = []
        for k in range(self.keys - 1):
            pictures = [frame.image for frame in rendered[k * per_segment:(k + 1) * per_segment + 1]]
            distances = [picture_distance(a, b) for a, b in zip(pictures, pictures[1:])]
            places.append(place_evenly(distances, self.cfg.interpolation_steps))
        return places

    def coarse_settings(self) -> RenderSettings:
        """The coarse pass: the uniform journey at half the denoising steps (at least one)."""
        settings = self.settings()
        return replace(settings, steps=max(1, math.ceil(settings.steps / 2)))

    # latent blending --------------------------------------------------------------
    def branch_step(self) -> int | None:
        """The step after which in-betweens branch off; None when the journey runs too
        few steps to branch (its in-betweens are then denoised in full)."""
        settings = self.settings()
        first = first_step(settings, self.cfg.model_identifier == "img2img")
        ran = settings.steps - first
        branch = first + min(ran - 1, max(1, round(ran * BRANCH_FRACTION)))
        return branch if branch > first else None

    def _blend_plan(self) -> Plan:
        branch = self.branch_step()
        settings = self.settings()
        keyframes = [self._job(self._key_record(k, k * POSITION_SCALE), partial(self._keyframe, k),
                               seed_position=k * (self.cfg.interpolation_steps + 1))
                     for k in range(self.keys)]
        rendered = yield Render(iter(keyframes), replace(settings, keep_step=branch), results=True)
        segments = [[BlendNode(0.0, rendered[k].image, rendered[k].kept_latents, keyframes[k].name),
                     BlendNode(1.0, rendered[k + 1].image, rendered[k + 1].kept_latents,
                               keyframes[k + 1].name)]
                    for k in range(self.keys - 1)]
        made = [0] * (self.keys - 1)
        left = (self.keys - 1) * self.cfg.interpolation_steps
        between = settings if branch is None else replace(settings, start_step=branch)
        while left:
            gaps = next_gaps(segments, left)
            planned = [self._blend_job(k, segments[k][i], segments[k][i + 1], made) for k, i in gaps]
            rendered = yield Render(iter(job for job, _ in planned), between, results=True)
            # Inserted from the right, so that the gaps still to fill keep their indexes.
            for (k, i), (job, node), frame in sorted(zip(gaps, planned, rendered),
                                                     key=lambda item: item[0], reverse=True):
                segments[k].insert(i + 1, replace(node, image=frame.image))
            left -= len(planned)
        yield Record({"transitions": [[node.t for node in nodes] for nodes in segments]})
        order = [segments[0][0].name] + [node.name for nodes in segments for node in nodes[1:]]
        yield Media("output-0", order, video=True)

    def _blend_job(self, k: int, before: BlendNode, after: BlendNode,
                   made: list[int]) -> tuple[FrameJob, BlendNode]:
        """The in-between halfway between two neighbours of segment ``k``, and its node
        (its picture comes once it is rendered)."""
        t = (before.t + after.t) / 2
        made[k] += 1
        record = self._between_record(k, made[k], t, round((k + t) * POSITION_SCALE), True)
        latents = None
        if before.latents is not None and after.latents is not None:
            latents = slerp(before.latents[0], after.latents[0], 0.5).unsqueeze(0)
        start = (lambda: latents) if latents is not None else None
        job = self._job(record, partial(self._between, k, t), start)
        return job, BlendNode(t, None, latents, record.name)

