"""Start-up stays light and the core never needs the TUI."""

from __future__ import annotations

import subprocess
import sys

from helpers import ROOT


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)


def test_core_imports_without_textual():
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'textual' or name.startswith('textual.') or name.startswith('textual_image'):\n"
        "            raise ImportError('textual is blocked in this test')\n"
        "sys.meta_path.insert(0, Block())\n"
        "import lse_core, lse_core.cli, lse_core.run, lse_core.engine, lse_core.experiments\n"
        "import lse_core.catalog, lse_core.progress\n"
        "assert not any(m.split('.')[0] in ('textual', 'textual_image') for m in sys.modules)\n"
        "print('ok')\n"
    )
    result = _python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_help_imports_no_heavy_libraries():
    code = (
        "import sys\n"
        "from lse_core.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = [m for m in ('torch', 'diffusers', 'transformers', 'textual') if m in sys.modules]\n"
        "print('heavy:', heavy)\n"
    )
    result = _python(code)
    assert result.returncode == 0, result.stderr
    assert "usage: lse" in result.stdout
    assert "heavy: []" in result.stdout


def test_entry_script_matches_console_script():
    result = subprocess.run([sys.executable, "lse_tui.py", "--help"], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0
    assert "usage: lse" in result.stdout and "resume" in result.stdout


def test_model_option_without_subcommand_opens_the_tui():
    from lse_core.cli import build_parser

    args = build_parser().parse_args(["--model", "tiny", "--graphics", "halfcell"])
    assert args.command is None and args.model == "tiny" and args.graphics == "halfcell"
    args = build_parser().parse_args(["tui", "--model", "tiny"])
    assert args.command == "tui" and args.model == "tiny"
