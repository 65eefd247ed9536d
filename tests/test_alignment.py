"""Alignments: AER known answers, gold parsing, hard links, subword -> word merging (BPE), the
heatmap at a narrow width, images, the lexalign corpus and its gold, the `align` command, and a
model whose attention matches the gold of lexalign."""
from __future__ import annotations

import json

import pytest
import torch
from helpers import run
from rich.console import Console
from typer.testing import CliRunner

from seq2attn.cli.main import app
from seq2attn.config import TokenizerConfig, resolve_config
from seq2attn.errors import ConfigError, DataError
from seq2attn.inference.alignment import (
    Alignment,
    GoldLinks,
    alignment_error_rate,
    hard_links,
    heatmap,
    parse_links,
    pharaoh,
    read_gold,
    save_image,
    word_alignment,
    word_of_marked_pieces,
    word_of_pieces,
)
from seq2attn.run.reporter import Reporter
from seq2attn.run.train import train
from seq2attn.special import EOS
from seq2attn.text.corpora import (
    CORPORA,
    generate,
    load_corpus,
    read_lines,
    write_splits,
)
from seq2attn.text.generated import (
    LEX_ADJECTIVES,
    LEX_ADVERBS,
    LEX_DETERMINERS,
    LEX_NOUNS,
    LEX_VERBS,
)
from seq2attn.text.tokenizer import TextCodec


def gold(line: str) -> GoldLinks:
    return parse_links(line)


# --- AER -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("predicted", "gold_line", "aer", "precision", "recall"),
    [
        ({(0, 0), (1, 1), (2, 2)}, "0-0 1-1 2-2", 0.0, 1.0, 1.0),  # identical
        ({(0, 1), (1, 0)}, "0-0 1-1", 1.0, 0.0, 0.0),  # disjoint
        ({(0, 1)}, "0-0 1p1", 1.0, 0.0, 0.0),  # disjoint from sure and possible
        # A={00,11,21}, S={00,22}, P={00,11,22}: |A&S|=1, |A&P|=2 -> 1 - 3/5
        ({(0, 0), (1, 1), (2, 1)}, "0-0 1p1 2-2", 0.4, 2 / 3, 0.5),
        ({(1, 1)}, "0-0 1p1", 1 - 1 / 2, 1.0, 0.0),  # a possible link alone: precision, no recall
        (set(), "", 0.0, 1.0, 1.0),  # nothing to align, nothing claimed
    ],
)
def test_aer_known_answers(predicted, gold_line, aer, precision, recall):
    result = alignment_error_rate([predicted], [gold(gold_line)])
    assert result.aer == pytest.approx(aer)
    assert result.precision == pytest.approx(precision) and result.recall == pytest.approx(recall)


def test_aer_sums_counts_over_the_corpus():
    # sentence 1: |A|=1 |S|=1 all right; sentence 2: |A|=3 |S|=1 one right -> 1 - (2 + 2) / (4 + 2)
    result = alignment_error_rate([{(0, 0)}, {(0, 0), (1, 1), (2, 2)}], [gold("0-0"), gold("0-0")])
    assert result.aer == pytest.approx(1 - 4 / 6)
    assert (result.sentences, result.links, result.sure, result.possible) == (2, 4, 2, 2)


def test_parse_links_sure_possible_and_one_indexed():
    g = parse_links("1-1 2p3 3-2", one_indexed=True)
    assert g.sure == {(0, 0), (2, 1)} and g.possible == {(0, 0), (1, 2), (2, 1)}
    with pytest.raises(DataError, match="not a link"):
        parse_links("0-0 x", where="gold line 3")
    with pytest.raises(DataError, match="index 0"):
        parse_links("0-1", one_indexed=True)


def test_read_gold_pharaoh_and_wpt(tmp_path):
    pharaoh_file = tmp_path / "g.align"
    pharaoh_file.write_text("0-0 1p1\n\n")
    assert read_gold(pharaoh_file, n_sentences=2) == [gold("0-0 1p1"), gold("")]
    with pytest.raises(DataError, match="2 lines but the source has 3"):
        read_gold(pharaoh_file, n_sentences=3)
    # Hansards/WPT form: sentence (from 1), source, target (from 1, 0 = NULL), S|P
    wpt = tmp_path / "test.wa"
    wpt.write_text("1 1 1 S\n1 2 3 P\n1 0 2 S\n3 2 1\n")
    got = read_gold(wpt, n_sentences=3, one_indexed=True)
    assert got[0] == GoldLinks(frozenset({(0, 0)}), frozenset({(0, 0), (1, 2)}))
    assert got[1] == gold("") and got[2].sure == {(1, 0)}


# --- hard links ----------------------------------------------------------------------------------
def test_hard_links_argmax_and_threshold():
    w = torch.tensor([[0.7, 0.2, 0.1],  # target 0 -> source 0
                      [0.1, 0.3, 0.6],  # target 1 -> source 2
                      [0.0, 0.0, 0.0]])  # all weight on </s>: no link
    assert hard_links(w) == [(0, 0), (2, 1)]
    assert pharaoh(hard_links(w)) == "0-0 2-1"
    assert hard_links(w, threshold=0.25) == [(0, 0), (1, 1), (2, 1)]
    with pytest.raises(ConfigError, match="threshold"):
        hard_links(w, threshold=0.0)


# --- subwords -> words ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bpe_codec():
    text = ["the cat sat on the mat", "a dog ran far", "unbelievable things happen"] * 3
    return TextCodec.train(TokenizerConfig(kind="bpe", vocab_size=40), text, text)


def test_word_of_pieces_uses_offsets(bpe_codec):
    src = "unbelievable  cat"  # two spaces: offsets point into this very string
    enc = bpe_codec.encode_one(src, side="src")
    assert len(enc.tokens) > 4  # the words really are split into several pieces
    index = word_of_pieces(src, enc.offsets)
    assert index == sorted(index) and index[0] == 0 and index[-1] == 1
    pieces = "".join(enc.tokens).replace("▁", " ").split()
    assert pieces == ["unbelievable", "cat"]


def test_word_of_marked_pieces():
    assert word_of_marked_pieces(["▁un", "bel", "iev", "▁cat", "▁", "s"]) == [0, 0, 0, 1, 2, 2]
    assert word_of_marked_pieces(["a", "▁", "b"]) == [0, 1, 1]  # char tokenizer: "▁" then the word
    assert word_of_marked_pieces(["▁x", "▁"]) == [0, 0]  # a trailing bare space joins the last word


def _one_hot_rows(n_cols: int, cols: list[int]) -> torch.Tensor:
    w = torch.zeros(len(cols), n_cols)
    w[torch.arange(len(cols)), torch.tensor(cols)] = 1.0
    return w


def test_word_alignment_merges_bpe_pieces_into_words(bpe_codec):
    src, tgt = "unbelievable cat", "the mat unbelievable"
    s = bpe_codec.encode_one(src, side="src")
    t = bpe_codec.encode_one(tgt, side="tgt")
    s_words = word_of_pieces(src, s.offsets)
    t_words = word_of_pieces(tgt, t.offsets)
    # every target piece of word j looks at the last piece of source word expect[j]
    expect = {0: 1, 1: 1, 2: 0}  # the -> cat, mat -> cat, unbelievable -> unbelievable
    last_piece = {w: max(i for i, x in enumerate(s_words) if x == w) for w in set(s_words)}
    att = _one_hot_rows(len(s.tokens) + 1, [last_piece[expect[j]] for j in t_words])
    a = word_alignment(bpe_codec, src=src, tgt=tgt, src_pieces=[*s.tokens, EOS], tgt_pieces=t.tokens, attention=att)
    assert (a.src, a.tgt) == (["unbelievable", "cat"], ["the", "mat", "unbelievable"])
    assert hard_links(a.weights) == [(0, 2), (1, 0), (1, 1)]
    assert torch.allclose(a.weights.sum(dim=1), torch.ones(3))  # columns summed, rows averaged


def test_word_alignment_of_a_hypothesis_spelled_with_other_pieces(bpe_codec):
    # a model may emit "▁c" "a" "t" where the tokenizer would write "▁cat": words come from "▁" then
    src = "a cat"
    s = bpe_codec.encode_one(src, side="src")
    pieces = ["▁c", "a", "t", "▁d", "o", "g"]
    att = torch.full((len(pieces), len(s.tokens) + 1), 1.0 / (len(s.tokens) + 1))
    a = word_alignment(bpe_codec, src=src, tgt="cat dog", src_pieces=[*s.tokens, EOS], tgt_pieces=pieces,
                       attention=att)
    assert a.tgt == ["cat", "dog"] and tuple(a.weights.shape) == (2, 2)


def test_eos_column_is_dropped_not_renormalized(bpe_codec):
    s = bpe_codec.encode_one("cat", side="src")
    att = torch.tensor([[0.0] * (len(s.tokens) - 1) + [0.6, 0.4]])  # 40% on </s>
    a = word_alignment(bpe_codec, src="cat", tgt="cat", src_pieces=[*s.tokens, EOS],
                       tgt_pieces=bpe_codec.encode_one("cat", side="tgt").tokens[:1], attention=att)
    assert a.weights.tolist() == [[pytest.approx(0.6)]]


# --- renderers -----------------------------------------------------------------------------------
def test_heatmap_wraps_to_a_narrow_console():
    src = [f"word{i}" for i in range(20)] + [EOS]
    tgt = ["x", "yy", "zzz"]
    w = torch.softmax(torch.arange(3 * 21, dtype=torch.float).reshape(3, 21), dim=1)
    console = Console(width=40, record=True, color_system=None)
    console.print(heatmap(Alignment(src, tgt, w), width=console.width, title="a [title]"))
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 40
    assert all(tok in text for tok in src)  # every column shown once, in some chunk
    assert "(source 1-" in text and "of 21)" in text and "a [title]" in text


@pytest.mark.parametrize("width", range(24, 101, 4))
def test_heatmap_panels_keep_every_target_label(width):
    src = ["Donaudampf", "und", "▁Kapitänsmütze", "x", "yy", "zzz"] * 4 + [EOS]
    tgt = ["▁the", "▁Danube", "▁steam", "ship"]
    w = torch.softmax(torch.arange(4 * 25, dtype=torch.float).reshape(4, 25).sin() * 4, dim=1)
    console = Console(width=width, record=True, color_system=None)
    console.print(heatmap(Alignment(src, tgt, w), width=width, title="greedy"))
    text = console.export_text()
    panels = max(text.count("(source "), 1)
    assert all(text.count(label) == panels for label in tgt), text  # every panel has all row labels
    assert max(len(line) for line in text.splitlines()) <= width


def test_heatmap_leaves_small_weights_on_the_terminal_background():
    w = torch.tensor([[0.0, 0.002, 0.998], [0.5, 0.5, 0.0]])
    console = Console(width=80, force_terminal=True, color_system="truecolor")
    with console.capture() as capture:
        console.print(heatmap(Alignment(["a", "b", EOS], ["x", "y"], w)))
    ansi = capture.get()
    assert "48;2;0;0;0" not in ansi  # no forced black background anywhere
    assert ansi.count("48;2;") == 3  # three cells of 1% or more are shaded, the rest are not
    assert "100" in ansi and " 50" in ansi


def test_heatmap_cuts_very_long_tokens():
    a = Alignment(["x" * 40, EOS], ["y" * 40], torch.tensor([[0.5, 0.5]]))
    console = Console(width=60, record=True, color_system=None)
    console.print(heatmap(a, width=60))
    text = console.export_text()
    assert "…" in text and max(map(len, text.splitlines())) <= 60


@pytest.mark.parametrize("suffix", ["png", "svg"])
def test_save_image(tmp_path, suffix):
    a = Alignment(["a", "b"], ["B", "A"], torch.tensor([[0.1, 0.9], [0.8, 0.2]]))
    save_image(tmp_path / f"att.{suffix}", a, title="t")
    data = (tmp_path / f"att.{suffix}").read_bytes()
    assert data.startswith(b"\x89PNG") if suffix == "png" else b"<svg" in data
    assert not list(tmp_path.glob("*.tmp"))
    with pytest.raises(ConfigError, match="unknown image type"):
        save_image(tmp_path / "att.gif", a)


# --- lexalign ------------------------------------------------------------------------------------
LEXICON = {**LEX_DETERMINERS, **LEX_NOUNS, **LEX_ADJECTIVES, **LEX_VERBS, **LEX_ADVERBS}


def test_lexalign_gold_links_translate_word_for_word():
    pairs = generate("lexalign", 300, seed=4)
    assert pairs.links is not None and len(pairs.links) == 300
    for src, tgt, links in zip(pairs.src, pairs.tgt, pairs.links):
        s, t = src.split(), tgt.split()
        g = parse_links(links)
        assert sorted(i for i, _ in g.sure) == list(range(len(s)))  # one-to-one, every word
        assert sorted(j for _, j in g.sure) == list(range(len(t)))
        assert all(LEXICON[s[i]] == t[j] for i, j in g.sure)
        assert t[-1] in LEX_VERBS.values()  # verb-final


def test_lexalign_reorders_adjectives():
    pairs = generate("lexalign", 100, seed=1)
    swapped = [p for p in pairs.links if "1-2" in p.split() and "2-1" in p.split()]
    assert swapped  # "det adj noun" -> "det noun adj"


def test_prepare_writes_gold_links(tmp_path):
    paths = write_splits(load_corpus("lexalign"), tmp_path)
    assert tmp_path / "test.align" in paths
    assert len(read_lines(tmp_path / "test.align")) == len(read_lines(tmp_path / "test.src"))
    result = run("corpora", "prepare", "lexalign", "--out", tmp_path / "c")
    assert result.exit_code == 0 and (tmp_path / "c" / "dev.align").is_file()


# --- the align command ---------------------------------------------------------------------------
def test_align_pharaoh_json_and_image(tiny_model, tmp_path):
    result = run("align", "-m", tiny_model, "a b c d", "--format", "pharaoh", "--png", tmp_path / "a.png",
                 "--device", "cpu")
    assert result.exit_code == 0, result.output
    links = [tuple(map(int, x.split("-"))) for x in result.stdout.split()]
    assert all(0 <= i < 4 for i, _ in links)
    assert (tmp_path / "a.png").read_bytes().startswith(b"\x89PNG")
    result = run("align", "-m", tiny_model, "a b c", "--target", "c b a", "--format", "json", "--device", "cpu")
    row = json.loads(result.stdout)
    assert row["src_tokens"] == ["a", "b", "c"] and row["tgt_tokens"] == ["c", "b", "a"]
    assert len(row["attention"]) == 3 and all(len(r) == 3 for r in row["attention"])


def test_align_files_with_beam_one(tiny_model, tmp_path):
    src = tmp_path / "s.txt"
    src.write_text("a b c\nd e\n")
    result = run("align", "-m", tiny_model, "--src", src, "--beam", "1", "--format", "pharaoh", "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == 2
    result = run("align", "-m", tiny_model, "--src", src, "--png", tmp_path / "x.svg", "--device", "cpu")
    assert result.exit_code == 0 and (tmp_path / "x-1.svg").is_file() and (tmp_path / "x-2.svg").is_file()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["a b", "--src", "s.txt"], "one of them"),
        (["--src", "s.txt", "--gold", "g"], "--gold needs --src and --tgt"),
        (["a b", "--layer", "1"], "model.backend=rnn"),
        (["a b", "--png", "a.gif"], "unknown image type"),
    ],
)
def test_align_bad_options_give_one_line(tiny_model, tmp_path, args, needle):
    (tmp_path / "s.txt").write_text("a b\n")
    args = [str(tmp_path / a) if a in ("s.txt", "g") else a for a in args]
    result = run("align", "-m", tiny_model, *args, "--device", "cpu")
    assert result.exit_code == 1 and needle in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_training_saves_an_attention_image_per_validation(tiny_model):
    steps = sorted(p.name for p in (tiny_model / "attention").iterdir())
    assert steps == ["step-30.png", "step-60.png"]


# --- a model learns the gold alignment -----------------------------------------------------------
@pytest.mark.slow
def test_lexalign_attention_matches_gold(tmp_path):
    data = tmp_path / "data"
    assert run("corpora", "prepare", "lexalign", "--out", data).exit_code == 0
    model = tmp_path / "m"
    # a step budget, not minutes: the same model (and AER) on any machine, ~7% AER at 200 steps;
    # one thread, as small GRU steps gain little from two and lose much on a busy machine
    result = run("train", "--corpus", "lexalign", "--out", model, "--device", "cpu", "--set", "train.max_steps=200",
                 "--set", "train.validate_every=200", "--set", "data.dev_size=100", "--set", "train.threads=1")
    assert result.exit_code == 0, result.output
    result = run("align", "-m", model, "--src", data / "test.src", "--tgt", data / "test.tgt",
                 "--gold", data / "test.align", "--format", "json", "--device", "cpu")
    aer = json.loads(result.stdout)
    assert aer["sentences"] == 500 and aer["aer"] <= 0.15, aer


class _Messages(Reporter):
    def __init__(self):
        self.lines = []

    def message(self, text):
        self.lines.append(text)


def _two_steps(reverse_files, *sets):
    return resolve_config(preset=CORPORA["reverse"].preset,
                          sets=["model.emb_size=8", "model.hidden_size=8", "model.dec_hidden_size=8",
                                "train.max_steps=2", "train.validate_every=1", "data.dev_size=4", *sets],
                          flags={"data": {"train": [str(p) for p in reverse_files["train"]],
                                          "dev": [str(p) for p in reverse_files["dev"]]}})


def test_a_plotting_failure_never_stops_training(tmp_path, reverse_files, monkeypatch):
    import seq2attn.inference.alignment

    def broken(*args, **kwargs):
        raise RuntimeError("no fonts")

    monkeypatch.setattr(seq2attn.inference.alignment, "draw_pair", broken)
    reporter = _Messages()
    assert train(_two_steps(reverse_files), tmp_path / "m", reporter=reporter).step == 2
    assert sum("could not save the attention image (RuntimeError: no fonts)" in m for m in reporter.lines) == 2


def test_attention_images_can_be_switched_off(tmp_path, reverse_files):
    train(_two_steps(reverse_files, "train.attention_image=false"), tmp_path / "m")
    assert not (tmp_path / "m" / "attention").exists()


def _small_cfg(reverse_files, sets=(), **train):
    return resolve_config(preset=CORPORA["reverse"].preset,
                          sets=["model.emb_size=16", "model.hidden_size=16", "model.dec_hidden_size=16",
                                "train.attention_image=false", "train.curve=false", *sets],
                          flags={"data": {"train": [str(p) for p in reverse_files["train"]],
                                          "dev": [str(p) for p in reverse_files["dev"]]},
                                 "train": train})


# --- align --head ------------------------------------------------------------------------------------
def test_align_head_picks_one_head_of_a_transformer(tmp_path, reverse_files):
    out = tmp_path / "t"
    cfg = _small_cfg(reverse_files, ["model.backend=transformer", "model.heads=2", "model.ff_size=32",
                               "model.enc_layers=1", "model.dec_layers=2"], max_steps=4, validate_every=4)
    train(cfg, out)
    runner = CliRunner()

    def attention(*args):
        result = runner.invoke(app, ["align", "-m", str(out), "a b c", "--target", "c b a", "--format", "json",
                                     "--level", "subword", *args])
        assert result.exit_code == 0, result.output
        return torch.tensor(json.loads(result.stdout)["attention"])

    heads = [attention("--head", "0"), attention("--head", "1")]
    average = attention()
    assert not torch.allclose(heads[0], heads[1], atol=1e-3)  # two different heads
    assert torch.allclose((heads[0] + heads[1]) / 2, average, atol=2e-4)  # the default averages them
    assert not torch.allclose(attention("--layer", "0"), average, atol=1e-3)
    bad = runner.invoke(app, ["align", "-m", str(out), "a b", "--head", "2"])
    assert bad.exit_code == 1 and "head" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
