"""interpolation (SPEC §5.4): keyframes of prompts and/or noises, in-between frames slerped."""

from __future__ import annotations

import torch

from ..engine import FrameInput
from ..errors import BadInput
from ..latents import interpolate
from .base import Experiment, FrameJob, Media, Plan, Render


class Interpolation(Experiment):
    ignored_keys = ("prompt", "load_prompt_embeds", "load_latent_noise", "images_per_prompt")

    def prepare(self) -> None:
        cfg = self.cfg
        prompt_items, noise_items = cfg.inter_prompts, cfg.inter_noises
        prompts = [self.inputs.prompt(item, f"inter_prompts[{i}]") for i, item in enumerate(prompt_items)]
        noises = [self.inputs.noise_item(item, f"inter_noises[{i}]") for i, item in enumerate(noise_items)]
        for i, noise in enumerate(noises[1:], start=1):
            if noise.shape != noises[0].shape:
                raise BadInput(f"key 'inter_noises[{i}]': noise shape {tuple(noise.shape)} differs "
                               f"from inter_noises[0] {tuple(noises[0].shape)}")
        conditioning = self.inputs.conditioning(self.inputs.pixel_size(noises[0]))

        keys = max(len(prompts), len(noises))
        between = cfg.interpolation_steps
        self.jobs: list[FrameJob] = []

        def add(prompt: torch.Tensor, noise: torch.Tensor, label: str) -> None:
            index = len(self.jobs)
            frame = FrameInput(prompt, noise, step_seed=self.seed + index, conditioning=conditioning)
            self.jobs.append(FrameJob(f"output-0_frame-{index:04d}_{label}", frame))

        def item(values: list[torch.Tensor], k: int) -> torch.Tensor:
            return values[k] if len(values) > 1 else values[0]

        add(item(prompts, 0), item(noises, 0), "keyframe-0")
        for k in range(keys - 1):
            for step in range(1, between + 1):
                t = step / (between + 1)
                # Per sample and in float32: fp16 norms overflow.
                prompt = (interpolate(prompts[k], prompts[k + 1], t, cfg.interpolation_method)
                          if len(prompts) > 1 else prompts[0])
                noise = (interpolate(noises[k], noises[k + 1], t, cfg.interpolation_method)
                         if len(noises) > 1 else noises[0])
                add(prompt, noise, f"lstitms-{k},{k + 1}_step-{step}")
            add(item(prompts, k + 1), item(noises, k + 1), f"keyframe-{k + 1}")

    @property
    def frames_planned(self) -> int:
        return len(self.jobs)

    def plan(self) -> Plan:
        yield Render(self.jobs, self.settings())
        yield Media("output-0_interpolation", [job.name for job in self.jobs], video=True)
