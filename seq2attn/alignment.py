"""Showing attention: a heatmap table for the terminal (more renderers and links build on this)."""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table
from rich.text import Text
from torch import Tensor


def _cell(weight: float, is_max: bool) -> Text:
    # shade from the terminal background towards bright yellow; the number stays readable on top
    level = int(round(weight * 255))
    fg = "black" if weight > 0.5 else "white"
    label = f"{weight * 100:.0f}" if weight >= 0.005 else "·"
    style = f"{fg} on rgb({level},{level},{int(level * 0.3)})"
    if is_max:
        style += " bold underline"
    return Text(f"{label:>3}", style=style)


def heatmap_table(src_tokens: Sequence[str], tgt_tokens: Sequence[str], weights: Tensor, *, title: str | None = None) -> Table:
    """A rich table: target tokens as rows, source tokens as columns, weights in percent; the
    largest weight of each row is underlined. ``weights`` is (len(tgt_tokens), len(src_tokens))."""
    assert tuple(weights.shape) == (len(tgt_tokens), len(src_tokens)), (weights.shape, len(tgt_tokens), len(src_tokens))
    table = Table(title=title, show_lines=False, pad_edge=False, box=None, padding=(0, 0, 0, 1))
    table.add_column("", justify="right", style="bold cyan", no_wrap=True)
    for tok in src_tokens:
        table.add_column(Text(tok, style="bold magenta"), justify="right", no_wrap=True, min_width=3)
    for tok, row in zip(tgt_tokens, weights.tolist()):
        best = max(range(len(row)), key=row.__getitem__) if row else -1
        table.add_row(tok, *[_cell(w, j == best) for j, w in enumerate(row)])
    return table


def argmax_links(attention: Tensor) -> list[tuple[int, int]]:
    """Hard links from soft attention: for every target row j of ``attention`` (T, S), the pair
    (source index, j) of its largest weight; 0-based, one link per target row, in row order."""
    if attention.numel() == 0:
        return []
    return [(s, j) for j, s in enumerate(attention.argmax(dim=-1).tolist())]
