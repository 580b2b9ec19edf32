"""The ``lse`` command: ``python lse_tui.py ...`` is the same as ``lse ...``.

The headless commands are lse_core's; this launcher adds the terminal UI (for
``lse`` and ``lse tui``), imported only when it opens, so lse_core never imports
the UI and ``lse --help`` stays fast.
"""

from __future__ import annotations

import sys
from typing import Sequence

from lse_core.cli import main as core_main


def open_tui(model: str | None, graphics: str) -> int:
    from screens.app import run_app

    return run_app(model=model, graphics=graphics)


def main(argv: Sequence[str] | None = None) -> int:
    return core_main(argv, open_tui=open_tui)


if __name__ == "__main__":
    sys.exit(main())
