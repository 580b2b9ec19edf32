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
        conditioning = self.inputs.conditioning()
        steps = self.cfg.diffusion_steps
        captured = steps_run(self.settings(), self.cfg.model_identifier == "img2img")
        seed = self.cfg.rand_seed or 0
        jobs = []
        for i in range(noise.shape[0]):
            frame = FrameInput(prompt, noise[i : i + 1], step_seed=seed + i, conditioning=conditioning)
            step_names = tuple(f"output-{i}_diffstep-{s}" for s in range(1, captured + 1))
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


class VisualizeDiffusion(SingleInference):
    """As single inference, plus every denoising step decoded, as a GIF and a grid per image."""

    capture_steps = True

    def plan(self) -> Plan:
        yield from super().plan()
        for i, job in enumerate(self.jobs):
            yield Media(f"output-{i}_diffusion", list(job.step_names), video=True)
            yield Media(f"output-{i}_diffusion-grid", list(job.step_names), grid=True)
