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
        steps = self.cfg.diffusion_steps
        captured = steps_run(self.settings(), self.cfg.model_identifier == "img2img")
        jobs = []
        for i in range(noise.shape[0]):
            frame = FrameInput(prompt, noise[i : i + 1], step_seed=self.seed + i,
                               conditioning=conditioning)
            # Numbered by place in the schedule: img2img runs only its last steps.
            step_names = tuple(f"output-{i}_diffstep-{s}"
                               for s in range(steps - captured + 1, steps + 1))
            jobs.append(FrameJob(f"output-{i}_diffstep-{steps}", frame,
                                 step_names if self.capture_steps else ()))
        return jobs

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

    def plan(self) -> Plan:
        yield from super().plan()
        for i, job in enumerate(self.jobs):
            yield Media(f"output-{i}_diffusion", list(job.step_names), video=True)
            yield Media(f"output-{i}_diffusion-grid", list(job.step_names), grid=True)
