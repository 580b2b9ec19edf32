"""What ``session.json`` may hold: the keys lse acts on, each checked before use.

The manifest is a file anyone can edit or damage. A value lse would act on — a time
it prints, a thread count it sets, a batch size it renders with, a stored
diffevolution answer it replays — is checked here when the session is opened, so a
crafted session is refused in one line (and listed as unreadable) instead of
failing later with a traceback, a hang or an endless loop. Keys lse only shows
(state, counts) stay lenient: a damaged count is shown as unknown.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .config import MAX_BATCH, MAX_TEXT
from .errors import BadInput, clip
from .frames import PLAIN_NAME

MAX_MANIFEST_BYTES = 32 * 2**20  # sessions before the journal kept every checksum here
LATEST_TIME = 32_503_680_000  # the year 3000: a later "updated" is not a clock's reading
MAX_THREADS = 1024
MAX_GENES = 16  # config's genes_per_generation limit

Whole = Annotated[int, Field(strict=True)]
Time = Annotated[float, Field(ge=0, le=LATEST_TIME, allow_inf_nan=False)]
Name = Annotated[str, Field(pattern=PLAIN_NAME.pattern, max_length=255)]


class _Stored(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)


class StoredChoice(BaseModel):
    """A diffevolution answer as ``Choice.from_stored`` reads it."""

    model_config = ConfigDict(extra="forbid", strict=True)
    gene: Annotated[int, Field(ge=0, lt=MAX_GENES)] | None = None
    auto: Annotated[int, Field(ge=0, le=1_000_000)] = 0
    prompt: Annotated[str, Field(max_length=MAX_TEXT)] | None = None
    back: Annotated[int, Field(ge=0)] | None = None
    end: bool = False
    finish: bool = False


class StoredNode(_Stored):
    id: Annotated[int, Field(ge=0)]
    name: Name
    parent: Annotated[int, Field(ge=0)] | None
    generation: Annotated[int, Field(ge=0)]


class StoredEvolution(_Stored):
    choices: list[StoredChoice] = []
    lineage: list[StoredNode] = []

    @model_validator(mode="after")
    def _within_the_lineage(self) -> "StoredEvolution":
        nodes = len(self.lineage)
        for index, choice in enumerate(self.choices):
            if choice.back is not None and choice.back >= max(nodes, 1):
                raise ValueError(f"answer {index}: back {choice.back} is past the lineage's "
                                 f"{nodes} nodes")
        return self


class Manifest(_Stored):
    # Numbers stored as JSON may come back as int or float; strict mode would refuse 5 for a float.
    created: Annotated[Time, Field(strict=False)] | None = None
    updated: Annotated[Time, Field(strict=False)] | None = None
    batch_size: Annotated[int, Field(ge=1, le=MAX_BATCH)]
    torch_threads: Annotated[int, Field(ge=1, le=MAX_THREADS)] | None = None
    fixed_shapes: bool | None = None
    diffevolution: StoredEvolution | None = None
    checksums: dict[str, str] | None = None  # sessions before the journal


def parse_manifest(text: str, where: str) -> dict[str, Any]:
    """``session.json``'s text, parsed and checked; ``BadInput`` naming the problem."""
    try:
        data = json.loads(text)
    except RecursionError:
        raise BadInput(f"{where}: unreadable (nested too deeply)") from None
    except ValueError as exc:
        raise BadInput(f"{where}: unreadable ({exc.__class__.__name__})") from None
    if not isinstance(data, dict):
        raise BadInput(f"{where}: not a session manifest (expected a JSON object)")
    try:
        Manifest.model_validate(data)
    except ValidationError as exc:
        raise BadInput(f"{where}: {_describe(exc)}") from None
    except RecursionError:
        raise BadInput(f"{where}: unreadable (nested too deeply)") from None
    return data


def _describe(exc: ValidationError) -> str:
    error = exc.errors(include_url=False)[0]
    key = ".".join(str(part) for part in error["loc"])
    message = error["msg"].removeprefix("Value error, ")
    got = f" (got {clip(error['input'], 40)})" if error["type"] != "missing" else ""
    return f"key '{key}': {message}{got}"
