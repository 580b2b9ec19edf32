"""The diffevolution grid (SPEC §1, §5.5): a generation's genes as previews, answered by keys.

The run view pushes it when the core waits for a choice and passes the
``Choice`` it is dismissed with to ``run.choose``; the grid never touches the run.
Esc leaves the grid without an answer (the run keeps waiting, ``g`` in the run
view comes back); only ``x``, confirmed, ends the run.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Iterator

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container, Vertical
from textual.events import Resize
from textual.message import Message
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer, Label, Static

from lse_core.events import GenerationReady, WaitingForChoice
from lse_core.choices import Choice, parse_choice

from .dialogs import ChoiceDialog, ConfirmDialog, TextDialog
from .preview import image_widget_class, load_frame
from .viewer import FrameViewer

# Rows the screen keeps for its title, status line and footer.
CHROME_ROWS = 3
# Tiles have no border (the selected one is coloured instead), one column
# between them, and a label row under the preview.
GUTTER, LABEL_ROWS = 1, 1
# Previews narrower than this many cells show too little to choose by: genes become a list.
MIN_PREVIEW = 10


def grid_layout(genes: int, width: int, height: int, aspect: float = 1.0) -> tuple[int, int]:
    """The column count giving the largest previews, and that preview's width in cells.

    ``aspect`` is the frames' height over their width. A cell is about twice
    as tall as it is wide, so a square preview spans twice as many columns as rows.
    """
    best = (1, 0)
    for columns in range(1, genes + 1):
        rows = math.ceil(genes / columns)
        tile_width = (width - GUTTER * (columns - 1)) // columns
        tile_rows = height // rows - LABEL_ROWS
        side = min(tile_width, int(2 * tile_rows / aspect))
        if side > best[1]:
            best = (columns, side)
    return best


def lineage_rows(lineage: tuple[dict[str, Any], ...],
                 current: int | None = None) -> list[tuple[int, str]]:
    """(node id, label) in tree order, children indented under their parent; ◀ marks
    ``current``, the parent of the generation on screen."""
    children: dict[int | None, list[dict[str, Any]]] = {}
    for node in lineage:
        children.setdefault(node["parent"], []).append(node)

    def walk(parent: int | None, depth: int) -> Iterator[tuple[int, str]]:
        for node in children.get(parent, []):
            # Short, so that a node is one line in the dialog at 80 columns.
            label = f"{'  ' * depth}{node['id']}: {node.get('label', node['name'])}"
            if node["id"] == current:
                label += " ◀ now"
            yield node["id"], label
            yield from walk(node["id"], depth + 1)

    return list(walk(None, 0))


def describe(choice: Choice) -> str:
    """One line for the run log, in the words of the keys that made it."""
    if choice.end:
        return "end"
    parts = []
    if choice.back is not None:
        parts.append(f"back to node {choice.back}")
    if choice.gene is not None:
        parts.append(f"gene {choice.gene}")
    if choice.prompt:
        parts.append(f"target prompt {choice.prompt!r}")
    if choice.auto:
        parts.append(f"auto-pick {choice.auto}")
    return ", ".join(parts) or "re-roll"


class GeneTile(Vertical):
    """One gene: its preview (when a renderer is on) above its number."""

    def __init__(self, gene: int, image: Widget | None) -> None:
        super().__init__(classes="gene")
        self.gene = gene
        self.image = image

    def compose(self) -> ComposeResult:
        if self.image is not None:
            with Container(classes="gene-frame"):
                yield self.image
        yield Label(f"gene {self.gene}", classes="gene-label")


class EvolutionScreen(Screen[Choice | None]):
    """All genes of one generation; dismissed with the user's ``Choice``, or None
    when left with esc (the run keeps waiting for the answer).

    The tiles come first, empty; a thread worker decodes the genes' pictures and
    they fill in, so keys are answered from the first moment."""

    class GenesDecoded(Message):
        def __init__(self, images: list[Any]) -> None:
            super().__init__()
            self.images = images

    CSS_PATH = "evolution.tcss"
    HELP_TITLE = "Diffevolution grid"
    BINDINGS = [
        # The arrows are in the help (?), not the footer, so that all keys fit in 80 columns.
        Binding("left", "move(-1, 0)", "Move", show=False, id="evolution.left"),
        Binding("right", "move(1, 0)", "Move", show=False, id="evolution.right"),
        Binding("up", "move(0, -1)", "Move", show=False, id="evolution.up"),
        Binding("down", "move(0, 1)", "Move", show=False, id="evolution.down"),
        # The digits share the footer entry of enter.
        Binding("enter", "pick", "Pick", key_display="⏎/0-9", id="evolution.pick",
                tooltip="The selected gene becomes the next parent"),
        *[Binding(str(d), f"pick({d})", "Pick gene by number", show=False,
                  id=f"evolution.gene{d}") for d in range(10)],
        Binding("r", "reroll", "Re-roll", id="evolution.reroll",
                tooltip="Same parent, new random genes"),
        Binding("a", "auto", "Auto", id="evolution.auto",
                tooltip="Let lse pick for N generations"),
        Binding("p", "prompt", "Prompt", id="evolution.prompt",
                tooltip="A new target prompt the genes move towards"),
        Binding("b", "lineage", "Back", id="evolution.lineage",
                tooltip="Step back to any earlier node of the lineage"),
        Binding("colon", "type", "Type", key_display=":", id="evolution.type",
                tooltip="Type an answer in the console syntax"),
        Binding("z", "zoom", "Zoom", id="evolution.zoom",
                tooltip="The selected gene as large as the terminal allows"),
        Binding("x", "end", "End", id="evolution.end",
                tooltip="End the run and write the lineage GIF (asks first)"),
        Binding("escape", "leave", "Run view", show=False, id="evolution.leave",
                tooltip="Back to the run view; the run keeps waiting (g there comes back)"),
        Binding("q", "explain_quit", "Stop", show=False, id="evolution.quit",
                tooltip="Says how to stop: the run view's q (resumable), or x"),
    ]

    def __init__(self, ready: GenerationReady, waiting: WaitingForChoice, graphics: str,
                 problem: str | None = None) -> None:
        super().__init__()
        self.ready = ready
        self.waiting = waiting
        self.image_class = image_widget_class(graphics)
        self.graphics = graphics
        self.problem = problem
        self.selected = 0
        self.columns = 1
        self.parent_node = waiting.parent
        self.decoded = False  # every gene's picture is in its tile

    def compose(self) -> ComposeResult:
        parent = f" · parent node {self.parent_node}" if self.parent_node is not None else ""
        yield Label(f"diffevolution · generation {self.waiting.generation}{parent} · "
                    f"{len(self.ready.names)} genes", id="evo-title")
        with Container(id="genes"):
            for gene in range(len(self.ready.paths)):
                image = (self.image_class(classes="gene-image")
                         if self.image_class is not None else None)
                yield GeneTile(gene, image)
        yield Static(id="evo-status")
        # The palette (ctrl+p) is in the keys help: its footer entry would push "? Keys" off 80 columns.
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self._select(0)
        if self.image_class is not None:
            self._decode_genes()
        else:
            self.decoded = True

    @work(thread=True, exclusive=True, group="genes")
    def _decode_genes(self) -> None:
        self.post_message(self.GenesDecoded([load_frame(path) for path in self.ready.paths]))

    def on_evolution_screen_genes_decoded(self, message: GenesDecoded) -> None:
        for tile, image in zip(self.query(GeneTile), message.images):
            tile.image.image = image  # type: ignore[union-attr]
        self.decoded = True
        self._lay_out(self.size.width, self.size.height)

    def on_resize(self, event: Resize) -> None:
        self._lay_out(event.size.width, event.size.height)

    def _lay_out(self, width: int, height: int) -> None:
        genes = len(self.ready.names)
        first = next((image for image in self.query(".gene-image")
                      if getattr(image, "image", None) is not None), None)
        aspect = first.image.height / first.image.width if first is not None else 1.0
        columns, side = grid_layout(genes, width, height - CHROME_ROWS, aspect)
        compact = self.image_class is None or side < MIN_PREVIEW
        self.columns = 1 if compact else columns
        self.set_class(compact, "-compact")
        self.query_one("#genes").styles.grid_size_columns = self.columns

    def _select(self, gene: int) -> None:
        self.selected = gene
        for tile in self.query(GeneTile):
            tile.set_class(tile.gene == gene, "-selected")
        status = self.query_one("#evo-status", Static)
        status.set_class(self.problem is not None, "-problem")
        status.update(self.problem or f"gene {gene}: {self.ready.names[gene]}")

    # keys ---------------------------------------------------------------------
    def _say(self, problem: str) -> None:
        """A key that cannot do anything here says why in the status line."""
        self.problem = problem
        self._select(self.selected)

    def action_move(self, dx: int, dy: int) -> None:
        target = self.selected + dx + dy * self.columns
        if 0 <= target < len(self.ready.names):
            self.problem = None
            self._select(target)

    def action_pick(self, gene: int | None = None) -> None:
        genes = len(self.ready.names)
        if gene is not None and gene >= genes:
            self._say(f"gene {gene}: this generation has genes 0 to {genes - 1}")
            return
        self.dismiss(Choice(gene=self.selected if gene is None else gene))

    def action_reroll(self) -> None:
        self.dismiss(Choice())

    def action_end(self) -> None:
        def confirmed(yes: bool | None) -> None:
            if yes:
                self.dismiss(Choice(end=True))

        self.app.push_screen(ConfirmDialog(
            "End this diffevolution?",
            "lse writes the lineage GIF, and an MP4 when the lineage has 3 frames or more. "
            "You can continue the session later: "
            "r in the sessions browser, or lse resume SESSION.",
            "End it"), confirmed)

    def action_leave(self) -> None:
        self.dismiss(None)

    def action_explain_quit(self) -> None:
        self._say("the run waits for your choice · esc: back to the run view, where q stops "
                  "it (resumable) · x: end it")

    def action_zoom(self) -> None:
        frames = list(zip(self.ready.names, self.ready.paths))
        title = f"generation {self.waiting.generation}"
        self.app.push_screen(FrameViewer(frames, self.selected, self.graphics, title),
                             self._select)

    def _ask(self, dialog: Screen[str | None], to_choice: Callable[[str], Choice]) -> None:
        def answered(text: str | None) -> None:
            if text is not None:  # None: the dialog was cancelled, keep choosing here
                self.dismiss(to_choice(text))

        self.app.push_screen(dialog, answered)

    def action_auto(self) -> None:
        def check(text: str) -> str | None:
            return None if text.strip().isdigit() and int(text) > 0 else "a whole number ≥ 1"

        self._ask(TextDialog("Let lse pick for how many generations (this one included)?",
                             "enter: start · esc: cancel", check),
                  lambda text: Choice(auto=int(text)))

    def action_prompt(self) -> None:
        def check(text: str) -> str | None:
            return None if text.strip() else "type a prompt, or esc"

        self._ask(TextDialog("New target prompt (positive|negative, or an embedding file)",
                             "the genes move towards it by step_size", check),
                  lambda text: Choice(prompt=text.strip()))

    def action_type(self) -> None:
        genes = len(self.ready.names)

        def check(text: str) -> str | None:
            try:
                parse_choice(text, genes)
            except ValueError as exc:
                return str(exc)
            return None

        # One line per form of the syntax: the core's one-line help is too wide for a dialog.
        syntax = "\n".join(part.strip() for part in self.waiting.help.split("  ·  "))
        self._ask(TextDialog("Action in the console syntax", syntax, check),
                  lambda text: parse_choice(text, genes))

    def action_lineage(self) -> None:
        rows = lineage_rows(self.waiting.lineage, self.parent_node)
        ids = {label: node for node, label in rows}
        current = next((label for node, label in rows if node == self.parent_node), None)
        self._ask(ChoiceDialog("Lineage: enter steps back to a node · esc: stay",
                               [label for _, label in rows], current),
                  lambda label: Choice(back=ids[label]))
