"""interpolation (SPEC §5.4): keyframes of prompts and/or noises, in-between frames slerped."""

from __future__ import annotations

from functools import partial
from typing import Iterator

import torch

from ..engine import FrameInput
from ..errors import BadInput
from ..frames import FrameRecord
from ..latents import PromptEmbedding, interpolate
from .base import Experiment, FrameJob, Media, Plan, Render


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

    @property
    def frames_planned(self) -> int:
        return (self.keys - 1) * (self.cfg.interpolation_steps + 1) + 1

    def _jobs(self) -> Iterator[FrameJob]:
        """Keyframe 0, then per segment its in-between frames and its end keyframe (a
        keyframe between two segments is rendered once, as the end of the one before)."""
        between = self.cfg.interpolation_steps
        yield self._job(FrameRecord(self._name(0, "start"), 0, "key 0", "keyframe"),
                        partial(self._keyframe, 0))
        for k in range(self.keys - 1):
            key = self._name(k, "start") if k == 0 else self._name(k - 1, "end")
            for step in range(1, between + 1):
                yield self._job(FrameRecord(self._name(k, str(step)), k * (between + 1) + step,
                                            f"key {k}→{k + 1} · {step}", "between", key),
                                partial(self._between, k, step))
            yield self._job(FrameRecord(self._name(k, "end"), (k + 1) * (between + 1),
                                        f"key {k + 1}", "keyframe"),
                            partial(self._keyframe, k + 1))

    @staticmethod
    def _name(segment: int, step: str) -> str:
        # The original tool's names.
        return f"output-0_lstitms-{segment},{segment + 1}_step-{step}"

    @staticmethod
    def _item(values: list, k: int):
        return values[k] if len(values) > 1 else values[0]

    def _between(self, k: int, step: int) -> tuple[PromptEmbedding, torch.Tensor]:
        t = step / (self.cfg.interpolation_steps + 1)
        method = self.cfg.interpolation_method
        # Per sample and in float32: fp16 norms overflow.
        prompts, noises = self.prompts, self.noises
        prompt = prompts[k].interpolate(prompts[k + 1], t, method) if len(prompts) > 1 else prompts[0]
        noise = interpolate(noises[k], noises[k + 1], t, method) if len(noises) > 1 else noises[0]
        return prompt, noise

    def _keyframe(self, k: int) -> tuple[PromptEmbedding, torch.Tensor]:
        return self._item(self.prompts, k), self._item(self.noises, k)

    def _job(self, record: FrameRecord, tensors) -> FrameJob:
        def make() -> FrameInput:
            prompt, noise = tensors()
            # Frames are seeded by their place in the journey.
            return FrameInput(prompt, noise, step_seed=self.seed + record.position,
                              conditioning=self.conditioning)

        return FrameJob(record, make)

    def plan(self) -> Plan:
        yield Render(self._jobs(), self.settings())
        yield Media("output-0", [job.name for job in self._jobs()], video=True)
