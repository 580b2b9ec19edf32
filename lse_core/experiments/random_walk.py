"""random-walk (SPEC §5.3): fixed random steps through prompt and/or noise space."""

from __future__ import annotations

from typing import Iterator

import torch

from ..engine import FrameInput
from ..frames import FrameRecord
from .base import Copy, Experiment, FrameJob, Media, Plan, Render


def walk_name(image: int, direction: int, step: int) -> str:
    label = "start" if step == 0 else str(step)
    return f"output-{image}_direction-{direction}_randwalkstep-{label}"


class RandomWalk(Experiment):
    """Per direction: one uniform delta per enabled space, added once per step from the origin."""

    def prepare(self) -> None:
        self.prompt = self.inputs.base_prompt()
        self.noise = self.inputs.base_noise()
        self.conditioning = self.inputs.conditioning(self.inputs.pixel_size(self.noise))
        self.images = self.noise.shape[0]

    def record(self, image: int, direction: int, step: int) -> FrameRecord:
        """A frame's place: each image walks its directions one after another."""
        cfg = self.cfg
        position = (image * cfg.walk_directions + direction) * (cfg.walk_steps + 1) + step
        where = f"dir {direction} · {'start' if step == 0 else f'step {step}'}"
        label = where if self.images == 1 else f"img {image} · {where}"
        # Every step of a direction is its start moved; a direction's start is image's first.
        parent = (walk_name(image, 0, 0) if direction else None) if step == 0 else walk_name(image, direction, 0)
        return FrameRecord(walk_name(image, direction, step), position, label,
                           "start" if step == 0 else "step", parent)

    def _jobs(self) -> Iterator[FrameJob]:
        cfg = self.cfg
        prompt, noise = self.prompt, self.noise
        generator = torch.Generator("cpu").manual_seed(self.seed)
        for direction in range(cfg.walk_directions):
            # Both deltas are drawn for every direction so that switching one space
            # on or off does not change the other space's walk.
            noise_delta = cfg.step_size * (torch.rand(noise.shape, generator=generator) * 2 - 1)
            prompt_delta = prompt.random_delta(generator, cfg.step_size)
            for step in range(cfg.walk_steps + 1):
                for image in range(self.images):
                    if step == 0 and direction > 0:
                        continue  # every direction starts from the same frame: a copy
                    yield FrameJob(self.record(image, direction, step),
                                   self._maker(image, step, noise_delta, prompt_delta))

    def _maker(self, image: int, step: int, noise_delta: torch.Tensor, prompt_delta: torch.Tensor):
        cfg = self.cfg

        def make() -> FrameInput:
            walked_prompt = self.prompt.plus(prompt_delta, step) if cfg.prompt_rand_walk else self.prompt
            noise = self.noise[image : image + 1]
            walked_noise = noise + step * noise_delta[image : image + 1] if cfg.noise_rand_walk else noise
            return FrameInput(walked_prompt, walked_noise, step_seed=self.seed + image,
                              conditioning=self.conditioning)

        return make

    @property
    def frames_planned(self) -> int:
        return self.images * self.cfg.walk_directions * (self.cfg.walk_steps + 1)

    def plan(self) -> Plan:
        cfg = self.cfg
        yield Render(self._jobs(), self.settings())
        if cfg.walk_directions > 1:
            yield Copy([(walk_name(image, 0, 0), self.record(image, direction, 0))
                        for direction in range(1, cfg.walk_directions)
                        for image in range(self.images)])
        steps = cfg.walk_steps
        for image in range(self.images):
            frames = []
            for direction in range(cfg.walk_directions):
                out = [walk_name(image, direction, s) for s in range(steps + 1)]
                # Rubber band, as the original: out and back (start…N, N…start) per direction.
                frames += out + out[::-1]
            yield Media(f"output-{image}", frames, video=True)
