"""Tables that fit a terminal's width: some columns are never cut, the others shrink with ``…``.

rich's ``Table`` shrinks every column evenly as a last resort, which cut the id
and the time of ``fwsched history`` to nothing at 80 columns, and it costs
seconds for ten thousand rows. A ``Grid`` decides the widths itself: each
column is as wide as its widest cell; when the line is too long, the columns
with ``shrink=1`` (a log, a data preview) give up width first, then those with
``shrink=2``, each down to a single ``…``; columns with ``shrink=0`` are
never cut. When even that is too wide (a 30-character schedule name, a time
with milliseconds, 80 columns), a column with ``fold=True`` (a name) is
narrowed and its text continues on the row's next lines, so nothing is cut and
the table still fits (a panel would crop a longer line at its edge).

A ``Grid`` is a rich renderable (it takes the width it is given, so it fits a
dashboard's panel too) and also renders to plain text without rich's machinery
(``plain``), which is what a pipe gets.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from rich.cells import cell_len, chop_cells, set_cell_size
from rich.measure import Measurement
from rich.segment import Segment
from rich.style import Style

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions

ELLIPSIS = "…"
GAP = 2  # spaces between columns
FOLD_MIN = 8  # a folded column keeps at least this many cells per line


@dataclass(frozen=True)
class Column:
    header: str
    justify: Literal["left", "right"] = "left"
    shrink: int = 0  # 0: never cut; 1: shrinks first; 2: shrinks when 1 is not enough
    fold: bool = False  # last resort: narrower, its text on several lines (never cut)


# A cell is its text, or its text and a rich style (``"red"``, ``"bold green"``).
Cell = str | tuple[str, str]


@dataclass
class Grid:
    columns: Sequence[Column]
    rows: list[Sequence[Cell]] = field(default_factory=list)
    header_style: str = "bold"

    def add_row(self, *cells: Cell) -> None:
        self.rows.append(cells)

    # -- widths -------------------------------------------------------------------------

    def natural_widths(self) -> list[int]:
        widths = [cell_len(column.header) for column in self.columns]
        for row in self.rows:
            for index, cell in enumerate(row):
                size = cell_len(_text(cell))
                if size > widths[index]:
                    widths[index] = size
        return widths

    def widths(self, width: int | None) -> list[int]:
        """Each column's width so that a line fits in ``width`` (None: no limit)."""
        widths = self.natural_widths()
        if width is None:
            return widths
        excess = sum(widths) + GAP * (len(widths) - 1) - width
        for level in (1, 2):
            if excess <= 0:
                break
            excess = _shrink(widths, self.columns, level, excess)
        if excess <= 0:
            return widths
        natural = self.natural_widths()
        for index, column in enumerate(self.columns):
            if excess > 0 and column.fold:
                # Folding anyway: break at words (as narrow as the longest one), and give
                # the room that frees back to the columns that shrank.
                word = max(
                    (cell_len(w) for row in self.rows for w in _text(row[index]).split(" ")),
                    default=FOLD_MIN,
                )
                narrower = min(max(min(widths[index] - excess, word), FOLD_MIN), widths[index])
                excess -= widths[index] - narrower
                widths[index] = narrower
        for level in (1, 2):
            for index, column in enumerate(self.columns):
                if excess < 0 and column.shrink == level:
                    grow = min(-excess, natural[index] - widths[index])
                    widths[index] += grow
                    excess += grow
        return widths

    # -- rendering ------------------------------------------------------------------------

    def lines(self, width: int | None) -> Iterator[list[tuple[str, str | None]]]:
        """Each line as (text, style) pieces, gaps included, no trailing spaces."""
        widths = self.widths(width)
        header = [(column.header, self.header_style) for column in self.columns]
        last = len(widths) - 1
        for row in (header, *self.rows):
            cells = [(c, None) if isinstance(c, str) else c for c in row]
            texts = [_one_line(text) for text, _ in cells]
            # A folded cell's continuation goes on extra lines, the other cells blank there.
            folds = {
                i: _fold(texts[i], widths[i])
                for i, column in enumerate(self.columns)
                if column.fold and cell_len(texts[i]) > widths[i]
            }
            for line in range(max((len(parts) for parts in folds.values()), default=1)):
                pieces: list[tuple[str, str | None]] = []
                for index, (column, size) in enumerate(zip(self.columns, widths, strict=True)):
                    if index in folds:
                        parts = folds[index]
                        text = parts[line] if line < len(parts) else ""
                    else:
                        text = _fit(texts[index], size) if line == 0 else ""
                    pad = size - cell_len(text)
                    if column.justify == "right":
                        text = " " * pad + text
                    elif index < last:
                        text += " " * pad
                    if index < last:
                        text += " " * GAP
                    pieces.append((text, cells[index][1]))
                yield _trimmed(pieces)

    def plain(self, width: int | None) -> str:
        """The grid as plain text, one line per row: what a pipe or ``NO_COLOR`` gets."""
        return "\n".join("".join(text for text, _ in line) for line in self.lines(width))

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Segment]:
        styles: dict[str, Style] = {}
        for line in self.lines(options.max_width):
            for text, style in line:
                if style is None:
                    yield Segment(text)
                else:
                    if style not in styles:
                        styles[style] = console.get_style(style)
                    yield Segment(text, styles[style])
            yield Segment.line()

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        widths = self.widths(options.max_width)
        total = sum(widths) + GAP * (len(widths) - 1)
        return Measurement(min(total, options.max_width), min(total, options.max_width))


def _trimmed(pieces: list[tuple[str, str | None]]) -> list[tuple[str, str | None]]:
    """Without trailing spaces (empty last cells): noise when copied from a terminal."""
    while pieces and not pieces[-1][0].strip():
        pieces.pop()
    if pieces:
        text, style = pieces[-1]
        pieces[-1] = (text.rstrip(), style)
    return pieces


def _fold(text: str, width: int) -> list[str]:
    """``text`` in lines of at most ``width`` cells, broken at spaces where it can be."""
    lines: list[str] = []
    for word in text.split(" "):
        if lines and cell_len(lines[-1]) + 1 + cell_len(word) <= width:
            lines[-1] += " " + word
        else:
            lines += chop_cells(word, width) or [""]
    return lines


def _text(cell: Cell) -> str:
    return _one_line(cell if isinstance(cell, str) else cell[0])


def _one_line(text: str) -> str:
    # A cell is one line: a name or a log line with a control character would break the rows.
    if "\n" in text or "\r" in text or "\t" in text:
        return text.replace("\r\n", " ").replace("\n", " ").replace("\r", " ").replace("\t", " ")
    return text


def _shrink(widths: list[int], columns: Sequence[Column], level: int, excess: int) -> int:
    """Take up to ``excess`` cells from the columns of this level, widest first (each keeps
    one cell, for the ``…`` that says something is cut)."""
    floors = [1] * len(columns)
    while excess > 0:
        candidates = [
            i for i, c in enumerate(columns) if c.shrink == level and widths[i] > floors[i]
        ]
        if not candidates:
            break
        widest = max(candidates, key=lambda i: widths[i])
        widths[widest] -= 1
        excess -= 1
    return excess


def _fit(text: str, size: int) -> str:
    if cell_len(text) <= size:
        return text
    if size <= 0:
        return ""
    return set_cell_size(text, size - 1) + ELLIPSIS
