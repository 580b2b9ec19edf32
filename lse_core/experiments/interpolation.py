"""interpolation (SPEC §5.4): keyframes of prompts and/or noises, in-between frames slerped."""

from __future__ import annotations

import torch

from ..engine import FrameInput
from ..errors import BadInput
from ..latents import interpolate
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
        conditioning = self.inputs.conditioning(self.inputs.pixel_size(noises[0]))

        keys = max(len(prompts), len(noises))
        between = cfg.interpolation_steps
        self.jobs: list[FrameJob] = []

        def add(prompt: torch.Tensor, noise: torch.Tensor, segment: int, step: str) -> None:
            # The original tool's names; a keyframe between two segments is rendered once,
            # as the end of the segment before it.
            frame = FrameInput(prompt, noise, step_seed=self.seed + len(self.jobs),
                               conditioning=conditioning)
            name = f"output-0_lstitms-{segment},{segment + 1}_step-{step}"
            self.jobs.append(FrameJob(name, frame))

        def item(values: list[torch.Tensor], k: int) -> torch.Tensor:
            return values[k] if len(values) > 1 else values[0]

        add(item(prompts, 0), item(noises, 0), 0, "start")
        for k in range(keys - 1):
            for step in range(1, between + 1):
                t = step / (between + 1)
                # Per sample and in float32: fp16 norms overflow.
                prompt = (interpolate(prompts[k], prompts[k + 1], t, cfg.interpolation_method)
                          if len(prompts) > 1 else prompts[0])
                noise = (interpolate(noises[k], noises[k + 1], t, cfg.interpolation_method)
                         if len(noises) > 1 else noises[0])
                add(prompt, noise, k, str(step))
            add(item(prompts, k + 1), item(noises, k + 1), k, "end")

    @property
    def frames_planned(self) -> int:
        return len(self.jobs)

    def plan(self) -> Plan:
        yield Render(self.jobs, self.settings())
        yield Media("output-0", [job.name for job in self.jobs], video=True)
