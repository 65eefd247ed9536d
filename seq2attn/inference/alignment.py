"""Alignments from attention: subword pieces merged into words, hard links (Pharaoh ``i-j``),
alignment error rate against gold links, and two renderers (a rich heatmap for the terminal and a
matplotlib image).

Conventions: a weight matrix is ``(target positions, source positions)``; a link is a
``(source index, target index)`` pair, 0-indexed, as fast_align writes them (``i-j``).

Word level, in brief (docs/alignment.md has the long form): the source is split into its
whitespace-separated words and every piece goes to the word its character offsets fall in; a
word's column is the *sum* of its pieces' columns (attention mass on the word), a target word's
row the *mean* of its pieces' rows (a distribution again). The column of the source end marker
``</s>`` is dropped and the rows are not renormalized: a row sums to 1 minus the weight the
target word gave to ``</s>``, so the picture never claims an alignment the model did not make.
"""

from __future__ import annotations

import bisect
import re
import textwrap
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from torch import Tensor

from seq2attn.errors import ConfigError, DataError
from seq2attn.special import EOS
from seq2attn.text.tokenizer import SPACE, TextCodec

LEVELS = ("word", "subword")
IMAGE_FORMATS = ("png", "svg", "pdf")
Link = tuple[int, int]  # (source index, target index)


@dataclass
class Alignment:
    """Soft alignment of one sentence pair at one level (``word`` or ``subword``)."""

    src: list[str]  # column labels: source words, or pieces with the final "</s>"
    tgt: list[str]  # row labels: target words, or pieces
    weights: Tensor  # (len(tgt), len(src)) on CPU, float


# --------------------------------------------------------------------------- pieces -> words


def word_of_pieces(text: str, offsets: Sequence[tuple[int, int]]) -> list[int]:
    """Index of the whitespace-separated word of ``text`` that holds each piece, from the pieces'
    character spans (``Encoded.offsets``: trimmed, so each lies inside one word)."""
    starts = [m.start() for m in re.finditer(r"\S+", text)]
    if not starts:
        return [0] * len(offsets)
    return [max(0, bisect.bisect_right(starts, start) - 1) for start, _ in offsets]


def word_of_marked_pieces(pieces: Sequence[str]) -> list[int]:
    """Word index per piece from the Metaspace marker: a piece that starts with "▁" starts a word.

    For generated text, where no character offsets exist. A word made of "▁" alone (the model
    emitted a bare space) joins the word after it, as the detokenized text reads.
    """
    groups: list[list[int]] = []
    for i, piece in enumerate(pieces):
        if not groups or piece.startswith(SPACE):
            groups.append([])
        groups[-1].append(i)
    words: list[list[int]] = []
    pending: list[int] = []
    for group in groups:
        pending += group
        if any(pieces[i].replace(SPACE, "") for i in pending):
            words.append(pending)
            pending = []
    if pending:  # trailing bare spaces belong to the last word (or are the only one)
        if words:
            words[-1] += pending
        else:
            words.append(pending)
    out = [0] * len(pieces)
    for w, group in enumerate(words):
        for i in group:
            out[i] = w
    return out


def _merge(weights: Tensor, *, rows: Sequence[int], cols: Sequence[int], n_rows: int, n_cols: int) -> Tensor:
    """Sum the columns and average the rows that map to the same word. ``weights``: (T, S)."""
    col_map = torch.zeros(len(cols), n_cols)
    col_map[torch.arange(len(cols)), torch.tensor(list(cols), dtype=torch.long)] = 1.0
    row_map = torch.zeros(n_rows, len(rows))
    row_map[torch.tensor(list(rows), dtype=torch.long), torch.arange(len(rows))] = 1.0
    row_map = row_map / row_map.sum(dim=1, keepdim=True).clamp(min=1.0)
    return row_map @ weights.float() @ col_map  # (n_rows, n_cols)


def _target_words(codec: TextCodec, text: str, pieces: Sequence[str]) -> tuple[list[int], list[str]]:
    """Word index per target piece and the words. The offsets of ``text`` re-encoded are used
    when the encoding gives the very pieces decoded (always for given targets); a generated
    hypothesis may spell a word with other pieces than the tokenizer would, and then the "▁"
    word-start markers decide."""
    enc = codec.encode_one(text, side="tgt")
    if enc.tokens[: len(pieces)] == list(pieces):
        words = text.split()
        index = word_of_pieces(text, enc.offsets[: len(pieces)])
        return index, words[: max(index, default=-1) + 1]
    index = word_of_marked_pieces(pieces)
    words = [""] * (max(index, default=-1) + 1)
    for i, piece in zip(index, pieces):
        words[i] += piece.replace(SPACE, "")
    return index, words


def word_alignment(codec: TextCodec, *, src: str, tgt: str, src_pieces: Sequence[str],
                   tgt_pieces: Sequence[str], attention: Tensor) -> Alignment:
    """Merge a piece-level matrix into words of ``src`` (the input) and ``tgt`` (the output text).

    ``src_pieces`` ends with "</s>" (its column is dropped); ``attention`` is
    (len(tgt_pieces), len(src_pieces)).
    """
    assert tuple(attention.shape) == (len(tgt_pieces), len(src_pieces)), (attention.shape, len(tgt_pieces))
    n = len(src_pieces) - (1 if src_pieces and src_pieces[-1] == EOS else 0)
    if n == 0 or not tgt_pieces:
        return Alignment([], [], torch.zeros(0, 0))
    cols = word_of_pieces(src, codec.encode_one(src, side="src").offsets[:n])
    src_words = src.split()[: max(cols) + 1]
    rows, tgt_words = _target_words(codec, tgt, tgt_pieces)
    weights = _merge(attention[:, :n], rows=rows, cols=cols, n_rows=len(tgt_words), n_cols=len(src_words))
    return Alignment(src_words, tgt_words, weights)


def subword_alignment(*, src_pieces: Sequence[str], tgt_pieces: Sequence[str], attention: Tensor) -> Alignment:
    """The pieces as they are, "</s>" column included."""
    return Alignment(list(src_pieces), list(tgt_pieces), attention.float().cpu())


# --------------------------------------------------------------------------- hard links


def hard_links(weights: Tensor, *, threshold: float | None = None) -> list[Link]:
    """Links from soft weights ``(T, S)``, sorted by source then target index.

    Default (``threshold`` None): each target position links to its highest-weighted source
    position (one link per target word; a row with no weight at all gets none). With a
    ``threshold``: every cell whose weight is at least ``threshold`` (many-to-many, possibly none).
    """
    if weights.numel() == 0:
        return []
    if threshold is not None:
        if not 0.0 < threshold <= 1.0:
            raise ConfigError(f"--threshold {threshold}; must be in (0, 1]")
        pairs = (weights >= threshold).nonzero().tolist()
        return sorted((s, t) for t, s in pairs)
    best_w, best = weights.max(dim=1)  # (T,)
    return sorted((int(s), t) for t, (s, w) in enumerate(zip(best.tolist(), best_w.tolist())) if w > 0)


def pharaoh(links: Collection[Link]) -> str:
    """``"0-0 1-2 2-1"``: source-target index pairs as fast_align writes them."""
    return " ".join(f"{s}-{t}" for s, t in sorted(links))


# --------------------------------------------------------------------------- gold links and AER


@dataclass(frozen=True)
class GoldLinks:
    sure: frozenset[Link]
    possible: frozenset[Link]  # the sure links included (S is a subset of P)


_LINK = re.compile(r"(\d+)([-p])(\d+)")
_WPT = re.compile(r"\s*(\d+)\s+(\d+)\s+(\d+)(?:\s+([SP]))?(?:\s+\S+)?\s*")


def parse_links(line: str, *, one_indexed: bool = False, where: str = "links") -> GoldLinks:
    """Gold links of one sentence: ``i-j`` sure, ``ipj`` possible (source i, target j)."""
    sure, possible = set(), set()
    shift = 1 if one_indexed else 0
    for item in line.split():
        m = _LINK.fullmatch(item)
        if m is None:
            raise DataError(f"{where}: {item!r} is not a link; expected i-j (sure) or ipj (possible)")
        link = (int(m.group(1)) - shift, int(m.group(3)) - shift)
        if min(link) < 0:
            raise DataError(f"{where}: {item!r} has index 0 but --gold-one-indexed says links count from 1")
        possible.add(link)
        if m.group(2) == "-":
            sure.add(link)
    return GoldLinks(frozenset(sure), frozenset(possible))


def _read_wpt(lines: list[str], *, one_indexed: bool, n_sentences: int, path: Path) -> list[GoldLinks]:
    # NAACL 2003 / WPT 2005 files: "sentence source target [S|P] [confidence]" per link, sentence
    # numbers from 1; with 1-indexed words, index 0 is NULL and its links are dropped.
    sure: list[set[Link]] = [set() for _ in range(n_sentences)]
    possible: list[set[Link]] = [set() for _ in range(n_sentences)]
    shift = 1 if one_indexed else 0
    for number, line in enumerate(lines, start=1):
        m = _WPT.fullmatch(line)
        if m is None or not line.strip():
            continue
        k, i, j = (int(m.group(g)) for g in (1, 2, 3))
        if not 1 <= k <= n_sentences:
            raise DataError(f"{path} line {number}: sentence {k}, but the source has {n_sentences} lines")
        if min(i, j) - shift < 0:
            continue
        link = (i - shift, j - shift)
        possible[k - 1].add(link)
        if m.group(4) != "P":
            sure[k - 1].add(link)
    return [GoldLinks(frozenset(s), frozenset(p)) for s, p in zip(sure, possible)]


def read_gold(path: str | Path, *, n_sentences: int, one_indexed: bool = False,
              words: Sequence[tuple[int, int]] | None = None) -> list[GoldLinks]:
    """Gold links per sentence: Pharaoh lines (one per sentence pair) or the
    ``sentence i j [S|P]`` format of the Hansards/WPT gold files (detected by its form).
    ``words``: (source words, target words) of each sentence pair; a link outside them is refused."""
    from seq2attn.text.textfiles import read_lines

    path = Path(path)
    lines = read_lines(path)
    if all(_WPT.fullmatch(line) for line in lines if line.strip()) and any(line.strip() for line in lines):
        golds = _read_wpt(lines, one_indexed=one_indexed, n_sentences=n_sentences, path=path)
        where = "sentence"
    elif len(lines) != n_sentences:
        raise DataError(f"{path} has {len(lines)} lines but the source has {n_sentences}; they must be line-aligned")
    else:
        golds = [parse_links(line, one_indexed=one_indexed, where=f"{path} line {i}") for i, line in enumerate(lines, 1)]
        where = "line"
    for k, (gold, (n_src, n_tgt)) in enumerate(zip(golds, words or []), start=1):
        outside = sorted(link for link in gold.possible if link[0] >= n_src or link[1] >= n_tgt)
        if outside:
            i, j = outside[0]
            raise DataError(f"{path} {where} {k}: link {i + one_indexed}-{j + one_indexed} is outside the sentence "
                            f"pair ({n_src} source and {n_tgt} target words)")
    return golds


@dataclass(frozen=True)
class AERResult:
    aer: float  # 1 - (|A&S| + |A&P|) / (|A| + |S|), a fraction in [0, 1]
    precision: float  # |A&P| / |A| (1 when A is empty)
    recall: float  # |A&S| / |S| (1 when S is empty)
    sentences: int
    links: int  # |A|
    sure: int  # |S|
    possible: int  # |P|, sure links included

    def as_dict(self) -> dict[str, float | int]:
        return {k: round(v, 6) if isinstance(v, float) else v for k, v in vars(self).items()}


def alignment_error_rate(predicted: Sequence[Collection[Link]], gold: Sequence[GoldLinks]) -> AERResult:
    """Corpus AER (Och and Ney 2003): counts summed over all sentences, then the ratio."""
    if len(predicted) != len(gold):
        raise DataError(f"{len(predicted)} predicted alignments but {len(gold)} gold ones")
    a = a_s = a_p = s = p = 0
    for links, g in zip(predicted, gold):
        links = set(links)
        possible = g.possible | g.sure
        a, s, p = a + len(links), s + len(g.sure), p + len(possible)
        a_s += len(links & g.sure)
        a_p += len(links & possible)
    aer = 1.0 - (a_s + a_p) / (a + s) if a + s else 0.0
    return AERResult(aer, a_p / a if a else 1.0, a_s / s if s else 1.0, len(gold), a, s, p)


# --------------------------------------------------------------------------- renderers

_MAX_LABEL = 14  # characters of a token label before it is cut with "…"


# viridis at five stops: every shade is mid-dark to bright, so it reads on light and dark themes
_SHADES = ((68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37))


def _shade(weight: float) -> tuple[int, int, int]:
    x = min(max(weight, 0.0), 1.0) * (len(_SHADES) - 1)
    i = min(int(x), len(_SHADES) - 2)
    f = x - i
    return tuple(round(a + (b - a) * f) for a, b in zip(_SHADES[i], _SHADES[i + 1]))


def _cell(weight: float, is_max: bool) -> Text:
    """A weight in percent; cells under 1% keep the terminal's own colors (a dim dot) so that a
    sparse matrix does not paint the screen, the others get a viridis background."""
    if weight < 0.005:
        return Text("  ·", style="dim")
    r, g, b = _shade(weight)
    fg = "black" if 0.299 * r + 0.587 * g + 0.114 * b > 140 else "white"
    style = f"{fg} on rgb({r},{g},{b})" + (" bold underline" if is_max else "")
    return Text(f"{weight * 100:>3.0f}", style=style)


def _label(token: str) -> str:
    return token if len(token) <= _MAX_LABEL else token[: _MAX_LABEL - 1] + "…"


def heatmap_table(src_tokens: Sequence[str], tgt_tokens: Sequence[str], weights: Tensor, *,
                  title: str | None = None, columns: range | None = None) -> Table:
    """A rich table: target tokens as rows, source tokens as columns (only ``columns`` when
    given), weights in percent; the largest weight of each full row is underlined.
    ``weights`` is (len(tgt_tokens), len(src_tokens))."""
    assert tuple(weights.shape) == (len(tgt_tokens), len(src_tokens)), (weights.shape, len(tgt_tokens), len(src_tokens))
    columns = columns if columns is not None else range(len(src_tokens))
    # Text, not a str: a bracket in a sentence must not be read as rich markup
    table = Table(title=Text(title) if title else None, show_lines=False, pad_edge=False, box=None,
                  padding=(0, 0, 0, 1))
    table.add_column("", justify="right", style="bold cyan", no_wrap=True)
    for j in columns:
        table.add_column(Text(_label(src_tokens[j]), style="bold magenta"), justify="right", no_wrap=True, min_width=3)
    for tok, row in zip(tgt_tokens, weights.tolist()):
        best = max(range(len(row)), key=row.__getitem__) if row else -1
        table.add_row(_label(tok), *[_cell(row[j], j == best) for j in columns])
    return table


def _column_chunks(src_tokens: Sequence[str], tgt_tokens: Sequence[str], width: int) -> list[range]:
    """Consecutive source columns that fit ``width`` characters beside the row labels."""
    label = max((len(_label(t)) for t in tgt_tokens), default=0)
    room = max(width - label, 4)
    chunks, start, used = [], 0, 0
    for j, tok in enumerate(src_tokens):
        need = max(3, len(_label(tok))) + 1  # the cell and its left padding
        if used + need > room and j > start:
            chunks.append(range(start, j))
            start, used = j, 0
        used += need
    chunks.append(range(start, len(src_tokens)))
    return chunks


def heatmap(alignment: Alignment, *, width: int | None = None, title: str | None = None) -> RenderableType:
    """The heatmap of ``alignment``; matrices wider than ``width`` characters are wrapped into
    consecutive tables of source columns (rows repeat), each titled with its column range."""
    chunks = _column_chunks(alignment.src, alignment.tgt, width) if width else [range(len(alignment.src))]
    if len(chunks) == 1:
        return heatmap_table(alignment.src, alignment.tgt, alignment.weights, title=title)
    n = len(alignment.src)
    return Group(*(
        heatmap_table(alignment.src, alignment.tgt, alignment.weights, columns=cols,
                      title=f"{title + '  ' if title and i == 0 else ''}(source {cols.start + 1}-{cols.stop} of {n})")
        for i, cols in enumerate(chunks)))


def image_format(path: str | Path) -> str:
    fmt = Path(path).suffix.lower().lstrip(".")
    if fmt not in IMAGE_FORMATS:
        raise ConfigError(f"--image {path}: unknown image type {fmt!r}; use a file ending in "
                          f"{', '.join('.' + f for f in IMAGE_FORMATS)}")
    return fmt


def save_image(path: str | Path, alignment: Alignment, *, title: str | None = None) -> None:
    """Write the heatmap as .png/.svg/.pdf (matplotlib, Agg: no display needed), atomically;
    the largest weight of each row is marked with a dot."""
    from matplotlib.figure import Figure  # late: matplotlib takes a second to import

    from seq2attn.fsutil import atomic_write

    path = Path(path)
    fmt = image_format(path)
    w = alignment.weights.float().numpy()
    rows, cols = w.shape
    src_labels, tgt_labels = [_label(t) for t in alignment.src], [_label(t) for t in alignment.tgt]
    # Margins from the label lengths instead of a layout engine: the training loop draws one image
    # per validation, and constrained layout would double the cost of each.
    left = 0.5 + 0.075 * max(map(len, tgt_labels), default=0)
    bottom = 0.6 + 0.065 * max(map(len, src_labels), default=0)
    right = 1.0
    width = min(max(left + 0.45 * cols + right, 4.0), 30.0)
    # a long title (the source sentence) wraps to the figure's width: about 14 characters an inch
    title = textwrap.fill(title, width=max(int(width * 14), 30)) if title else None
    top = 0.3 + 0.2 * (title.count("\n") + 1 if title else 0)
    height = min(bottom + 0.4 * rows + top, 30.0)
    fig = Figure(figsize=(width, height))
    fig.subplots_adjust(left=left / width, right=1 - right / width, bottom=bottom / height, top=1 - top / height)
    ax = fig.add_subplot()
    im = ax.imshow(w, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto", interpolation="nearest")
    if rows and cols:
        ax.scatter(w.argmax(axis=1), range(rows), s=12, c="red", marker="o")
    ax.set_xticks(range(cols), src_labels, rotation=60, ha="right", rotation_mode="anchor", fontsize=9)
    ax.set_yticks(range(rows), tgt_labels, fontsize=9)
    ax.set_xlabel("source")
    ax.set_ylabel("target")
    if title:
        ax.set_title(title, fontsize=10)
    cax = fig.add_axes((1 - (right - 0.25) / width, bottom / height, 0.15 / width, 1 - (bottom + top) / height))
    fig.colorbar(im, cax=cax)
    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, format=fmt, dpi=100))
    except OSError as e:
        raise DataError(f"{path}: cannot write ({e.strerror or e})") from None


def draw_pair(model, codec: TextCodec, *, src: str, tgt: str, max_length: int, device: torch.device | str,
              path: str | Path, title: str | None = None) -> None:
    """Save the attention of forced decoding of one pair as an image, over the tokenizer's own
    pieces (a character model's characters, a BPE model's pieces): the training loop calls this
    at every validation to show alignment emerging."""
    from seq2attn.nn.batches import make_batches
    from seq2attn.nn.search import force_decode

    src_ids, tgt_ids = (codec.encode([text], side=side)[0][:max_length] for text, side in ((src, "src"), (tgt, "tgt")))
    if not src_ids or not tgt_ids:
        return
    was_training = model.training
    model.eval()
    try:
        batch = next(iter(make_batches([src_ids], [tgt_ids], batch_tokens=10**9)))
        hyp = force_decode(model, batch.to(device))[0]
    finally:
        model.train(was_training)
    pieces = codec.tokens(src_ids, side="src") + [EOS]
    save_image(path, subword_alignment(src_pieces=pieces, tgt_pieces=codec.tokens(hyp.ids, side="tgt"),
                                       attention=hyp.attention), title=title)
