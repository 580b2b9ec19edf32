"""single-inference and visualize-diffusion (SPEC §5.1, §5.2)."""

from __future__ import annotations

from functools import partial

from ..engine import FrameInput, steps_run
from ..frames import FrameRecord
from .base import Experiment, FrameJob, Media, Plan, Render


class SingleInference(Experiment):
    """``images_per_prompt`` images from one prompt embedding and one noise tensor."""

    capture_steps = False

    def prepare(self) -> None:
        self.prompt = self.inputs.base_prompt()
        self.noise = self.inputs.base_noise()
        self.conditioning = self.inputs.conditioning(self.inputs.pixel_size(self.noise))
        self.images = self.noise.shape[0]

    def _input(self, image: int) -> FrameInput:
        return FrameInput(self.prompt, self.noise[image : image + 1], step_seed=self.seed + image,
                          conditioning=self.conditioning)

    def _job(self, image: int) -> FrameJob:
        # The original tool's name: the configured step count, even for img2img.
        record = FrameRecord(f"output-{image}_diffstep-{self.cfg.diffusion_steps}", image,
                             f"image {image}", "image")
        return FrameJob(record, partial(self._input, image))

    def jobs(self):
        return (self._job(i) for i in range(self.images))

    @property
    def frames_planned(self) -> int:
        return self.images

    def plan(self) -> Plan:
        yield Render(self.jobs(), self.settings(capture_steps=self.capture_steps))
        if self.images > 1 and not self.capture_steps:
            yield Media("outputs", [job.name for job in self.jobs()])


class VisualizeDiffusion(SingleInference):
    """As single inference, plus every denoising step decoded, as a GIF and a grid per image."""

    capture_steps = True

    @property
    def steps_run(self) -> int:
        return steps_run(self.settings(), self.cfg.model_identifier == "img2img")

    @property
    def frames_planned(self) -> int:
        return self.images * self.steps_run  # every step is a frame

    def _label(self, image: int, what: str) -> str:
        return what if self.images == 1 else f"image {image} · {what}"

    def _job(self, image: int) -> FrameJob:
        # The original tool numbers the steps that ran from 0 (img2img runs only its last
        # int(steps × strength)); the last step's frame is the finished image. Each image
        # tells its steps, then shows them all on a grid.
        ran = self.steps_run
        first = image * (ran + 1)
        steps = tuple(FrameRecord(f"output-{image}_diffstep-{s}", first + s,
                                  self._label(image, f"step {s}"), "step",
                                  f"output-{image}_diffstep-{s - 1}" if s else None)
                      for s in range(ran))
        return FrameJob(steps[-1], partial(self._input, image), steps)

    def plan(self) -> Plan:
        yield from super().plan()
        ran = self.steps_run
        for image, job in enumerate(self.jobs()):
            names = [record.name for record in job.steps]
            yield Media(f"output-{image}", names, video=True)
            grid = FrameRecord(f"output-{image}_diffusion-grid", image * (ran + 1) + ran,
                               self._label(image, "all steps"), "grid")
            yield Media(grid.name, names, grid=True, record=grid)
