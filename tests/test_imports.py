"""Start-up stays light and the core never needs the TUI."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from helpers import ROOT

UI_PACKAGES = ("textual", "textual_image", "screens")


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


def _ui_imports(source: str) -> list[str]:
    """Every module a Python source imports that belongs to the UI, at any depth
    (inside functions too), including ``importlib.import_module("…")`` and
    ``__import__("…")`` with a literal name."""
    found = []
    for node in ast.walk(ast.parse(source)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif (isinstance(node, ast.Call) and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
              and ((isinstance(node.func, ast.Name) and node.func.id == "__import__")
                   or (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module"))):
            names = [node.args[0].value]
        found += [name for name in names if name.split(".")[0] in UI_PACKAGES]
    return found


CORE_MODULES = sorted((ROOT / "lse_core").rglob("*.py"))


@pytest.mark.parametrize("path", CORE_MODULES, ids=[str(p.relative_to(ROOT)) for p in CORE_MODULES])
def test_no_core_module_imports_the_ui(path: Path):
    assert _ui_imports(path.read_text(encoding="utf-8")) == []


def test_the_ui_import_check_finds_every_form():
    source = ("import os\n"
              "def f():\n"
              "    from screens.app import run_app\n"
              "    import textual.widgets as w\n"
              "    __import__('textual_image')\n"
              "    importlib.import_module('screens')\n"
              "    from .screens import x\n")  # relative: lse_core's own module, not the UI
    assert _ui_imports(source) == ["screens.app", "textual.widgets", "textual_image", "screens"]


def test_the_console_script_is_the_launcher_outside_the_core():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["scripts"] == {"lse": "lse_tui:main"}


def test_entry_script_matches_console_script():
    result = subprocess.run([sys.executable, "lse_tui.py", "--help"], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0
    assert "usage: lse" in result.stdout and "resume" in result.stdout
    from lse_core.cli import build_parser

    assert result.stdout == build_parser().format_help()


def test_the_launcher_hands_the_tui_to_the_core(monkeypatch):
    import lse_tui

    opened = []
    monkeypatch.setattr(lse_tui, "open_tui", lambda model, graphics: opened.append(
        (model, graphics)) or 0)
    assert lse_tui.main(["--model", "tiny", "--graphics", "halfcell"]) == 0
    assert lse_tui.main(["tui"]) == 0
    assert opened == [("tiny", "halfcell"), (None, "auto")]


def test_the_core_alone_runs_headless_commands_and_says_where_the_tui_is(capsys):
    from lse_core.cli import main

    assert main(["tui"]) == 2
    assert capsys.readouterr().err.startswith("lse: the terminal UI starts from `lse`")


def test_model_option_without_subcommand_opens_the_tui():
    from lse_core.cli import build_parser

    args = build_parser().parse_args(["--model", "tiny", "--graphics", "halfcell"])
    assert args.command is None and args.model == "tiny" and args.graphics == "halfcell"
    args = build_parser().parse_args(["tui", "--model", "tiny"])
    assert args.command == "tui" and args.model == "tiny"
