"""single-inference and visualize-diffusion (SPEC §5.1, §5.2)."""

from __future__ import annotations

from ..engine import FrameInput, steps_run
from .base import Experiment, FrameJob, Media, Plan, Render


class SingleInference(Experiment):
    """``images_per_prompt`` images from one prompt embedding and one noise tensor."""

    capture_steps = False

    def _jobs(self) -> list[FrameJob]:
        prompt = self.inputs.base_prompt()
        noise = self.inputs.base_noise()
        conditioning = self.inputs.conditioning(self.inputs.pixel_size(noise))
        jobs = []
        for i in range(noise.shape[0]):
            frame = FrameInput(prompt, noise[i : i + 1], step_seed=self.seed + i,
                               conditioning=conditioning)
            jobs.append(self._job(i, frame))
        return jobs

    def _job(self, image: int, frame: FrameInput) -> FrameJob:
        # The original tool's name: the configured step count, even for img2img.
        return FrameJob(f"output-{image}_diffstep-{self.cfg.diffusion_steps}", frame)

    def prepare(self) -> None:
        self.jobs = self._jobs()

    @property
    def frames_planned(self) -> int:
        return len(self.jobs)

    def plan(self) -> Plan:
        yield Render(self.jobs, self.settings(capture_steps=self.capture_steps))
        if len(self.jobs) > 1 and not self.capture_steps:
            yield Media("outputs", [job.name for job in self.jobs])


class VisualizeDiffusion(SingleInference):
    """As single inference, plus every denoising step decoded, as a GIF and a grid per image."""

    capture_steps = True

    def _job(self, image: int, frame: FrameInput) -> FrameJob:
        # The original tool numbers the steps that ran from 0 (img2img runs only its last
        # int(steps × strength)); the last step's frame is the finished image.
        ran = steps_run(self.settings(), self.cfg.model_identifier == "img2img")
        step_names = tuple(f"output-{image}_diffstep-{s}" for s in range(ran))
        return FrameJob(step_names[-1], frame, step_names)

    def plan(self) -> Plan:
        yield from super().plan()
        for i, job in enumerate(self.jobs):
            yield Media(f"output-{i}", list(job.step_names), video=True)
            yield Media(f"output-{i}_diffusion-grid", list(job.step_names), grid=True)
