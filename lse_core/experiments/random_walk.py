"""random-walk (SPEC §5.3): fixed random steps through prompt and/or noise space."""

from __future__ import annotations

import torch

from ..engine import FrameInput
from .base import Copy, Experiment, FrameJob, Media, Plan, Render


def walk_name(image: int, direction: int, step: int) -> str:
    label = "start" if step == 0 else str(step)
    return f"output-{image}_direction-{direction}_randwalkstep-{label}"


class RandomWalk(Experiment):
    """Per direction: one uniform delta per enabled space, added once per step from the origin."""

    def prepare(self) -> None:
        cfg = self.cfg
        prompt = self.inputs.base_prompt()
        noise = self.inputs.base_noise()
        conditioning = self.inputs.conditioning(self.inputs.pixel_size(noise))
        generator = torch.Generator("cpu").manual_seed(self.seed)
        self.images = noise.shape[0]
        self.jobs: list[FrameJob] = []
        self.copies: list[tuple[str, str]] = []
        for direction in range(cfg.walk_directions):
            # Both deltas are drawn for every direction so that switching one space
            # on or off does not change the other space's walk.
            noise_delta = cfg.step_size * (torch.rand(noise.shape, generator=generator) * 2 - 1)
            prompt_delta = prompt.random_delta(generator, cfg.step_size)
            for step in range(cfg.walk_steps + 1):
                walked_prompt = prompt.plus(prompt_delta, step) if cfg.prompt_rand_walk else prompt
                walked_noise = noise + step * noise_delta if cfg.noise_rand_walk else noise
                for image in range(self.images):
                    name = walk_name(image, direction, step)
                    if step == 0 and direction > 0:
                        # Every direction starts from the same unmodified frame.
                        self.copies.append((walk_name(image, 0, 0), name))
                        continue
                    frame = FrameInput(walked_prompt, walked_noise[image : image + 1],
                                       step_seed=self.seed + image,
                                       conditioning=conditioning)
                    self.jobs.append(FrameJob(name, frame))

    @property
    def frames_planned(self) -> int:
        return len(self.jobs) + len(self.copies)

    def plan(self) -> Plan:
        yield Render(self.jobs, self.settings())
        if self.copies:
            yield Copy(self.copies)
        steps = self.cfg.walk_steps
        for image in range(self.images):
            frames = []
            for direction in range(self.cfg.walk_directions):
                out = [walk_name(image, direction, s) for s in range(steps + 1)]
                frames += out + out[-2:0:-1]  # rubber band: out and back before the next direction
            yield Media(f"output-{image}", frames, video=True)
