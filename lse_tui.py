"""Entry point: ``python lse_tui.py ...`` is the same as ``lse ...``."""

import sys

from lse_core.cli import main

if __name__ == "__main__":
    sys.exit(main())
