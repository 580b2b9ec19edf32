"""Copying a line of text for the user: to the terminal's clipboard, and to tmux's buffer.

Textual's ``copy_to_clipboard`` sends OSC 52, which a terminal may or may not
honour. Inside tmux the sequence stops at tmux: its default ``set-clipboard
external`` keeps applications out of its paste buffer and does not pass the
sequence on. So there the text also goes through ``tmux set-buffer -w``: into
tmux's paste buffer, and from tmux to the outer terminal's clipboard where tmux
is allowed to set it.
"""

from __future__ import annotations

import os
import subprocess

TMUX_TIMEOUT_S = 2.0


def in_tmux() -> bool:
    return bool(os.environ.get("TMUX"))


def to_tmux_buffer(text: str) -> str | None:
    """Put ``text`` in tmux's paste buffer; what went wrong, or None. Blocks for a
    moment: call it from a thread worker."""
    problem = None
    # -w (tmux 3.2 and later) also hands the text to the outer terminal's clipboard.
    for command in (["tmux", "set-buffer", "-w", "--", text], ["tmux", "set-buffer", "--", text]):
        try:
            result = subprocess.run(command, capture_output=True, text=True,
                                    timeout=TMUX_TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"tmux set-buffer: {exc}"
        if result.returncode == 0:
            return None
        problem = f"tmux set-buffer: {result.stderr.strip() or f'exit {result.returncode}'}"
    return problem


def where_it_went(tried_tmux: bool, tmux_problem: str | None) -> str:
    """Where a copied text can be pasted from, for the status line."""
    terminal = "sent to the terminal's clipboard (OSC 52, where the terminal allows it)"
    if not tried_tmux:
        return terminal
    if tmux_problem is None:
        return f"in tmux's paste buffer (prefix ] pastes it); {terminal}"
    return f"not in tmux's buffer ({tmux_problem}); {terminal}"
