"""Answers to a diffevolution generation, in the original tool's console syntax.

Kept apart from the experiment (and from torch) so that the command line can
check an answer file before any model is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

HELP = ("gene[;auto N][;prompt|negative]  ·  empty line = re-roll  ·  ;;prompt = new target  ·  "
        "back K = return to lineage node K  ·  exit = finish")


@dataclass(frozen=True)
class Choice:
    """One answer to a generation, applied in this order: back, gene, prompt, auto.

    All fields empty means re-roll: the same parent with new random noises.
    ``finish``: the last answer of a script; once its picks (auto ones included) are
    made, the run ends without rendering a generation nobody would choose from.
    """

    gene: int | None = None
    auto: int = 0
    prompt: str | None = None
    back: int | None = None
    end: bool = False
    finish: bool = False

    @classmethod
    def from_stored(cls, data: Any) -> "Choice":
        """A choice as ``session.json`` keeps it; ``ValueError`` when it was damaged."""
        if not isinstance(data, dict) or not set(data) <= {f.name for f in fields(cls)}:
            raise ValueError("not a stored choice")
        choice = cls(**data)
        wholes = [choice.auto] + [v for v in (choice.gene, choice.back) if v is not None]
        if (not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in wholes)
                or not isinstance(choice.prompt, (str, type(None)))
                or not isinstance(choice.end, bool) or not isinstance(choice.finish, bool)):
            raise ValueError("a stored choice has a value of the wrong type")
        return choice


def parse_choice(text: str, genes: int) -> Choice:
    """The original tool's console syntax ``{gene};{auto_steps};{prompt}``, plus ``back K``."""
    text = text.strip()
    if text.lower() in ("exit", "end", "quit", "q"):
        return Choice(end=True)
    if text.lower().startswith("back"):
        node = text[4:].strip()
        if not node.isdigit():
            raise ValueError("back needs a lineage node number, e.g. 'back 2'")
        return Choice(back=int(node))
    gene_text, _, rest = text.partition(";")
    auto_text, _, prompt = rest.partition(";")
    gene = None
    if gene_text.strip():
        if not gene_text.strip().isdigit() or int(gene_text) >= genes:
            raise ValueError(f"gene must be a number from 0 to {genes - 1}")
        gene = int(gene_text)
    auto = 0
    if auto_text.strip():
        if not auto_text.strip().isdigit():
            raise ValueError("auto steps must be a whole number")
        auto = int(auto_text)
    return Choice(gene=gene, auto=auto, prompt=prompt.strip() or None)
