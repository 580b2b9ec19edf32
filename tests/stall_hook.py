"""Run ``lse`` with one moment pinned down, so that a test can signal it right there.

    python stall_hook.py WHAT LSE-ARGS...

WHAT is one of:

- ``import-torch``: the process sends itself SIGINT as torch starts to import;
- ``load``: loading the model blocks for ten minutes;
- ``step``: the first denoising step (UNet call) after the first frame's PNG is
  published blocks for ten minutes;
- ``gif-INT`` / ``gif-TERM``: the process sends itself the signal just before the
  first GIF is renamed into place (its temporary file complete on disk).

A blocking stage first prints ``stall-hook: WHAT`` on stderr: the test waits for
that line, not for a fixed time. Everything else is the real program.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from importlib.abc import MetaPathFinder

from lse_core.cli import main

BLOCK_S = 600


def _announce_and_block(what: str) -> None:
    print(f"stall-hook: {what}", file=sys.stderr, flush=True)
    time.sleep(BLOCK_S)


class _SignalOnTorchImport(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torch":
            sys.meta_path.remove(self)
            os.kill(os.getpid(), signal.SIGINT)
        return None  # the import itself goes on as usual


def _block_model_load() -> None:
    import lse_core.run

    real = lse_core.run.load_model

    def load_model(*args, **kwargs):
        _announce_and_block("load")
        return real(*args, **kwargs)

    lse_core.run.load_model = load_model


def _block_a_step_after_the_first_frame() -> None:
    import lse_core.run

    real_load, real_replace = lse_core.run.load_model, os.replace
    published = []

    def replace(src, dst, *args, **kwargs):
        result = real_replace(src, dst, *args, **kwargs)
        if str(dst).endswith(".png"):
            published.append(dst)
        return result

    def before_unet(module, inputs):
        if published:
            _announce_and_block("step")

    def load_model(*args, **kwargs):
        model = real_load(*args, **kwargs)
        model.unet.register_forward_pre_hook(before_unet)
        return model

    os.replace = replace
    lse_core.run.load_model = load_model


def _signal_before_gif_rename(signum: int) -> None:
    real = os.replace

    def replace(src, dst, *args, **kwargs):
        if str(dst).endswith(".gif"):
            os.kill(os.getpid(), signum)
        return real(src, dst, *args, **kwargs)

    os.replace = replace


if __name__ == "__main__":
    what, args = sys.argv[1], sys.argv[2:]
    if what == "import-torch":
        sys.meta_path.insert(0, _SignalOnTorchImport())
    elif what == "load":
        _block_model_load()
    elif what == "step":
        _block_a_step_after_the_first_frame()
    elif what.startswith("gif-"):
        _signal_before_gif_rename(getattr(signal, "SIG" + what.removeprefix("gif-")))
    else:
        sys.exit(f"stall_hook: unknown stage {what}")
    sys.exit(main(args))
