"""lse core: configs, models, the denoising engine, experiments, sessions and media.

Nothing here imports textual; both front ends (TUI and CLI) drive this package.
"""

__version__ = "0.1.0"
