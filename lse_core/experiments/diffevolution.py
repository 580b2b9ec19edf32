"""diffevolution (SPEC §5.5): breed images by picking genes, generation after generation.

Each generation holds ``genes_per_generation`` candidates around the parent:
gene i's noise is slerp(parent noise, fresh noise i, step_size) and every gene's
prompt is slerp(parent prompt, target prompt, step_size). The user answers each
generation with a ``Choice``. Choices are stored in ``session.json``; a resumed
session replays them (their frames are already on disk) and goes on from the
last parent, so the lineage tree and every file come out the same.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import torch

from ..choices import HELP, Choice
from ..engine import FrameInput
from ..errors import BadInput
from ..frames import FrameRecord
from ..config import absolute_path, is_embedding_path
from ..latents import PromptEmbedding, slerp
from .base import AskChoice, Experiment, FrameJob, Media, Plan, Record, Render

START = "difevostep-start"
@dataclass
class _Node:
    id: int
    name: str
    parent: int | None
    generation: int
    prompt: PromptEmbedding
    noise: torch.Tensor
    gene: int | None = None  # its place in its generation (None: the start)

    @property
    def label(self) -> str:
        """How the original tool names a parent in file names: ``start`` or its gene index."""
        return "start" if self.gene is None else str(self.gene)

    @property
    def caption(self) -> str:
        """Its frame's short label: ``start`` or ``gen 2 · gene 3``."""
        return "start" if self.gene is None else f"gen {self.generation} · gene {self.gene}"

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "parent": self.parent,
                "generation": self.generation, "label": self.caption}


class Diffevolution(Experiment):
    continuable = True

    def prepare(self) -> None:
        self.start_prompt = self.inputs.base_prompt()
        self.start_noise = self.inputs.base_noise()[:1]
        self.size = self.inputs.pixel_size(self.start_noise)
        self.conditioning = self.inputs.conditioning(self.size)
        saved = self.saved.get("diffevolution") or {}
        try:
            self.replay = [Choice.from_stored(c) for c in saved.get("choices", [])]
        except (AttributeError, TypeError, ValueError):
            raise BadInput("session.json: the stored diffevolution answers are damaged") from None
        genes = self.cfg.genes_per_generation
        for index, choice in enumerate(self.replay):
            if choice.gene is not None and choice.gene >= genes:
                raise BadInput(f"session.json: stored diffevolution answer {index}: gene "
                               f"{choice.gene} is past this session's {genes} genes")
        if self.replay and self.saved.get("state") == "done":
            # Continuing a finished session: its last answer no longer ends the run.
            self.replay[-1] = replace(self.replay[-1], finish=False)

    @property
    def parallel_frames(self) -> int:
        return self.cfg.genes_per_generation  # a generation's genes are split across ranks

    def _fresh_noise(self, generation: int) -> torch.Tensor:
        seed = int(np.random.SeedSequence([self.seed, generation]).generate_state(1)[0])
        return self.inputs.noise_for_seed(seed, self.cfg.genes_per_generation, self.size)

    def _auto_pick(self, generation: int) -> int:
        return int(np.random.default_rng([self.seed, generation, 1]).integers(self.cfg.genes_per_generation))

    def _ask(self, generation: int, nodes: list[_Node], parent: int) -> Plan:
        """Ask until the answer fits this generation and lineage."""
        lineage = tuple(n.public() for n in nodes)
        while True:
            choice = yield AskChoice(generation, self.cfg.genes_per_generation, HELP, lineage,
                                     parent)
            problem = self._problem(choice, len(nodes))
            if problem is None:
                if choice.prompt and is_embedding_path(choice.prompt):
                    # Stored for replay, so it must not depend on the working directory.
                    choice = replace(choice, prompt=absolute_path(choice.prompt))
                return choice
            self.inputs.notify(problem)

    def _problem(self, choice: Choice, node_count: int) -> str | None:
        genes = self.cfg.genes_per_generation
        if choice.back is not None and not 0 <= choice.back < node_count:
            return f"back {choice.back}: the lineage has nodes 0 to {node_count - 1}"
        if choice.gene is not None and not 0 <= choice.gene < genes:
            return f"gene {choice.gene}: this generation has genes 0 to {genes - 1}"
        if choice.gene is not None and choice.back is not None:
            return "pick a gene or step back, not both in one answer"
        if choice.auto < 0:
            return "auto steps must be ≥ 0"
        if choice.prompt:
            try:
                self.inputs.prompt(choice.prompt, "prompt")
            except BadInput as exc:
                return str(exc)
        return None

    def plan(self) -> Plan:
        cfg = self.cfg
        genes = cfg.genes_per_generation
        settings = self.settings()
        start = FrameInput(self.start_prompt, self.start_noise, self.seed, self.conditioning)
        yield Render([FrameJob(FrameRecord(START, 0, "start", "start"), lambda: start)], settings)
        nodes = [_Node(0, START, None, 0, self.start_prompt, self.start_noise)]
        parent = nodes[0]
        target, target_text = self.start_prompt, None
        choices: list[Choice] = []
        auto_left = 0
        finishing = False
        generation = 0

        def record() -> Record:
            return Record({"diffevolution": {
                "choices": [asdict(c) for c in choices],
                "lineage": [n.public() for n in nodes],
                "current": parent.id,
                "target_prompt": target_text,
                "generations": generation,
            }})

        while not (finishing and auto_left == 0):
            generation += 1
            fresh = self._fresh_noise(generation)
            prompt = parent.prompt.interpolate(target, cfg.step_size, "slerp")
            jobs, noises = [], []
            for i in range(genes):
                noise = slerp(parent.noise, fresh[i : i + 1], cfg.step_size)
                frame = FrameInput(prompt, noise, self.seed + generation * genes + i, self.conditioning)
                # The original tool's names; re-rolls count as generations here, so none
                # overwrites another.
                gene = FrameRecord(f"difevostep-{generation}_parent-{parent.label}_gene-{i}",
                                   1 + (generation - 1) * genes + i, f"gen {generation} · gene {i}",
                                   "gene", parent.name)
                jobs.append(FrameJob(gene, lambda frame=frame: frame))
                noises.append(noise)
            yield Render(jobs, settings, generation=generation)
            # Stored before the question, so a run ended while it waits keeps this generation.
            yield record()

            if auto_left > 0:
                auto_left -= 1
                choice = Choice(gene=self._auto_pick(generation))
            else:
                if self.replay:
                    choice = self.replay.pop(0)
                    if (problem := self._problem(choice, len(nodes))) is not None:
                        raise BadInput(f"session.json: a stored diffevolution answer does not fit "
                                       f"(generation {generation}: {problem})")
                else:
                    choice = yield from self._ask(generation, nodes, parent.id)
                if not choice.end:
                    choices.append(choice)
            if choice.end:
                break
            finishing = finishing or choice.finish
            if choice.auto and choice.gene is None and choice.back is None:
                # "auto N" alone: the tool picks from this generation too.
                choice = replace(choice, gene=self._auto_pick(generation), auto=choice.auto - 1)
            if choice.back is not None:
                parent = nodes[choice.back]
            if choice.gene is not None:
                node = _Node(len(nodes), jobs[choice.gene].name, parent.id, generation, prompt,
                             noises[choice.gene], choice.gene)
                nodes.append(node)
                parent = node
            if choice.prompt:
                target, target_text = self.inputs.prompt(choice.prompt, "prompt"), choice.prompt
            auto_left += choice.auto
            yield record()
        path = []
        node: _Node | None = parent
        while node is not None:
            path.append(node.name)
            node = nodes[node.parent] if node.parent is not None else None
        yield Media("output-0", path[::-1], video=len(path) > 2)
