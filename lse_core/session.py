"""Session folders: effective config, frames, embeddings, media and ``session.json``.

Every file is written to a temporary name and renamed, so a crash never leaves
a half-written file that looks complete, and a resume trusts what it finds.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from PIL import Image

from .config import ExperimentConfig, build_config, read_yaml, to_yaml
from .errors import BadInput
from .latents import load_embedding, save_embedding
from .media import save_png

SUBFOLDERS = ("configs", "images", "embeddings", "gifs", "videos")
MANIFEST = "session.json"
CONFIG_NAME = "config.yaml"


def atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


@dataclass
class Session:
    path: Path
    manifest: dict[str, Any]

    @classmethod
    def create(cls, cfg: ExperimentConfig, info: dict[str, Any]) -> "Session":
        root = Path(cfg.output_path)
        stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
        base = f"{stamp}_{cfg.model_identifier}_{cfg.exp_identifier}"
        path, n = root / base, 1
        while path.exists():
            n += 1
            path = root / f"{base}_{n}"
        path.mkdir(parents=True)
        for sub in SUBFOLDERS:
            (path / sub).mkdir()
        atomic_write_text(path / "configs" / CONFIG_NAME, to_yaml(cfg))
        now = time.time()
        manifest = {
            "model_identifier": cfg.model_identifier,
            "exp_identifier": cfg.exp_identifier,
            "state": "running",
            "created": now,
            "updated": now,
            "frames_done": 0,
            **info,
        }
        session = cls(path, manifest)
        session.save()
        return session

    @classmethod
    def open(cls, path: str | Path) -> "Session":
        path = Path(path)
        try:
            manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise BadInput(f"{path}: not a session folder (no {MANIFEST})") from None
        except (OSError, json.JSONDecodeError) as exc:
            raise BadInput(f"{path / MANIFEST}: unreadable ({exc.__class__.__name__})") from None
        return cls(path, manifest)

    def config(self) -> ExperimentConfig:
        cfg_path = self.path / "configs" / CONFIG_NAME
        return build_config(read_yaml(cfg_path), source=str(cfg_path))

    def update(self, **fields: Any) -> None:
        self.manifest.update(fields)
        self.save()

    def save(self) -> None:
        self.manifest["updated"] = time.time()
        atomic_write_text(self.path / MANIFEST, json.dumps(self.manifest, indent=2, default=str))

    # frames ---------------------------------------------------------------
    def image_path(self, name: str) -> Path:
        return self.path / "images" / f"{name}.png"

    def embedding_path(self, name: str) -> Path:
        return self.path / "embeddings" / f"{name}.safetensors"

    def has_frame(self, name: str) -> bool:
        return self.image_path(name).is_file() and self.embedding_path(name).is_file()

    def write_frame(self, name: str, image: Image.Image, prompt_embed, latent_noise, image_embed) -> Path:
        # The embedding goes first: a frame counts as done once its PNG exists.
        save_embedding(self.embedding_path(name), prompt_embed, latent_noise, image_embed)
        save_png(image, self.image_path(name))
        return self.image_path(name)

    def copy_frame(self, source: str, target: str) -> None:
        for make in (self.embedding_path, self.image_path):
            tmp = make(target).with_name(f".{make(target).name}.tmp")
            shutil.copyfile(make(source), tmp)
            os.replace(tmp, make(target))

    def read_image(self, name: str) -> Image.Image:
        with Image.open(self.image_path(name)) as image:
            return image.convert("RGB")

    def read_embedding(self, name: str):
        return load_embedding(self.embedding_path(name))
