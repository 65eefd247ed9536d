"""Tokenizer: the round-trip property, fixed special ids, offsets, save/load and error paths."""

from __future__ import annotations

import functools
import json
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seq2attn.config import TOKENIZER_KINDS, TokenizerConfig
from seq2attn.errors import CheckpointError, ConfigError, DataError
from seq2attn.special import BOS, BOS_ID, EOS, EOS_ID, PAD, PAD_ID, UNK, UNK_ID
from seq2attn.text.tokenizer import (
    BUILDERS,
    SPACE,
    Encoded,
    TextCodec,
)

# Multi30k-like pairs; the German side brings ß, ä, ö, ü, the extra lines other accented letters.
SRC = [
    "Zwei junge weiße Männer sind im Freien in der Nähe vieler Büsche.",
    "Mehrere Männer mit Schutzhelmen bedienen ein Antriebsradsystem.",
    "Ein kleines Mädchen klettert in ein Spielhaus aus Holz.",
    "Ein Mann in einem blauen Hemd steht auf einer Leiter und putzt ein Fenster.",
    "Zwei Männer stehen am Herd und bereiten Essen zu.",
    "Ein Mann in Grün hält eine Gitarre, während der andere Mann sein Hemd ansieht.",
    "Ein Mann lächelt einen ausgestopften Löwen an.",
    "Ein schickes Mädchen spricht mit dem Handy, während sie langsam die Straße entlangschwebt.",
    "Él está en el café; ça va très bien, señor Ærø Øst Ångström.",
    "Zwei junge weiße Männer sind im Freien.",
]
TGT = [
    "Two young, White males are outside near many bushes.",
    "Several men in hard hats are operating a giant pulley system.",
    "A little girl climbing into a wooden playhouse.",
    "A man in a blue shirt is standing on a ladder cleaning a window.",
    "Two men are at the stove preparing food.",
    "A man in green holds a guitar while the other man observes his shirt.",
    "A man is smiling at a stuffed lion.",
    "A trendy girl talking on her cellphone while gliding slowly down the street.",
    "He is in the café; it goes very well, sir Ærø Øst Ångström.",
    "Two young white men are outside.",
]
GERMAN = "Zwei junge weiße Männer sind im Freien."
SIDES = ("src", "tgt")
KINDS = tuple(BUILDERS)
BIG = 1000  # room for every character and word of the corpus above


@functools.cache
def codec(kind: str, *, joint: bool = True, vocab_size: int = BIG, **options) -> TextCodec:
    """Trained once per configuration: training is cheap, but hypothesis calls tests many times."""
    cfg = TokenizerConfig(kind=kind, vocab_size=vocab_size, joint=joint, **options)
    return TextCodec.train(cfg, SRC, TGT)


def texts_for(side: str, *, joint: bool) -> list[str]:
    if joint:
        return SRC + TGT
    return SRC if side == "src" else TGT


def test_builders_cover_every_configured_kind():
    assert set(BUILDERS) == set(TOKENIZER_KINDS)


# --------------------------------------------------------------------------- round trip

WHITESPACE = st.sampled_from([" ", "  ", "\t", "\n", " \t ", "\u00a0", "\u3000 "])


def _recase(text: str, flags: list[bool]) -> str:
    # Upper-case only where lowercasing gives the same character back ("ß" -> "SS" would not),
    # so lowercased text stays inside the trained alphabet.
    out = []
    for c, up in zip(text, flags):
        u = c.upper()
        out.append(u if up and len(u) == 1 and u.lower() == c else c)
    return "".join(out)


@st.composite
def corpus_text(draw, *, side: str, joint: bool, by_words: bool, recase: bool) -> str:
    """Text made of the training material's characters (or words), with irregular spacing."""
    material = texts_for(side, joint=joint)
    if by_words:
        pieces = sorted({w for t in material for w in t.split()})
        word = st.sampled_from(pieces)
    else:
        alphabet = sorted({c for t in material for c in t if not c.isspace()})
        word = st.text(alphabet=alphabet, min_size=1, max_size=8)
    words = draw(st.lists(word, max_size=8))
    text = draw(st.sampled_from(["", " ", "\n "]))
    for w in words:
        text += w + draw(WHITESPACE)
    if recase:
        text = _recase(text, draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text))))
    return text


ROUND_TRIP_CONFIGS = [
    # (kind, joint, normalization, lowercase)
    *[(kind, True, "nfkc", False) for kind in KINDS],
    *[(kind, False, "nfd", True) for kind in KINDS],
    ("bpe", True, "none", False),
    ("unigram", True, "nfc", True),
    ("char", False, "nfkd", False),
]


@pytest.mark.parametrize("kind,joint,normalization,lowercase", ROUND_TRIP_CONFIGS)
@pytest.mark.parametrize("side", SIDES)
def test_decode_of_encode_is_the_normalized_text(kind, joint, normalization, lowercase, side):
    c = codec(kind, joint=joint, normalization=normalization, lowercase=lowercase)
    # With lowercase off, mixed case comes from the corpus itself (draws mix "M" and "m").
    texts = corpus_text(side=side, joint=joint, by_words=kind == "wordlevel", recase=lowercase)

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(text=texts)
    def check(text):
        [ids] = c.encode([text], side=side)
        assert UNK_ID not in ids, c.tokens(ids, side=side)
        assert c.decode([ids], side=side) == [c.normalize(text, side=side)]
        assert c.encode_one(text, side=side).ids == ids

    check()


@pytest.mark.parametrize("kind", KINDS)
def test_the_german_example_round_trips_with_messy_spacing(kind):
    c = codec(kind)
    text = "  " + GERMAN.replace(" ", " \t ") + "\n"
    [ids] = c.encode([text], side="src")
    assert c.decode([ids], side="src") == [GERMAN]
    assert c.normalize(text, side="src") == GERMAN


def test_subword_tokens_are_readable_pieces():
    c = codec("bpe", vocab_size=120)
    pieces = c.encode_one(GERMAN, side="src").tokens
    assert "".join(pieces).replace(SPACE, " ").strip() == GERMAN  # no byte-level symbols
    assert any(p.startswith(SPACE) for p in pieces)


# --------------------------------------------------------------------------- normalization


def test_normalize_collapses_and_strips_whitespace():
    c = codec("bpe")
    assert c.normalize("  Zwei   junge\t\nMänner ", side="src") == "Zwei junge Männer"


def test_normalize_lowercases_when_asked():
    assert codec("bpe", lowercase=True).normalize("ZWEI Männer", side="tgt") == "zwei männer"


@pytest.mark.parametrize(
    "normalization,expected",
    [("nfkc", "fi Männer"), ("nfd", "ﬁ Ma\u0308nner"), ("none", "ﬁ Männer")],
)
def test_normalize_applies_the_unicode_form(normalization, expected):
    c = codec("char", normalization=normalization)
    assert c.normalize("ﬁ  Männer", side="src") == expected


# --------------------------------------------------------------------------- special ids


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("joint", [True, False])
def test_special_tokens_have_ids_0_to_3_on_both_sides(kind, joint):
    c = codec(kind, joint=joint)
    for side in SIDES:
        tok = c.src if side == "src" else c.tgt
        assert [tok.token_to_id(t) for t in (PAD, BOS, EOS, UNK)] == [0, 1, 2, 3]
        assert c.tokens([PAD_ID, BOS_ID, EOS_ID, UNK_ID], side=side) == [PAD, BOS, EOS, UNK]


@pytest.mark.parametrize("kind", KINDS)
def test_encode_adds_no_bos_or_eos_and_text_never_becomes_a_control_id(kind):
    c = codec(kind)
    for ids in c.encode(["Zwei Männer", "<pad> <s> </s>", "<s>"], side="src"):
        assert not {PAD_ID, BOS_ID, EOS_ID} & set(ids)
        assert ids


def test_joint_codec_shares_one_tokenizer_and_separate_ones_differ():
    joint, separate = codec("bpe"), codec("bpe", joint=False)
    assert joint.joint and joint.src is joint.tgt
    assert not separate.joint and separate.src is not separate.tgt
    assert separate.encode(["Männer"], side="src") != separate.encode(["Männer"], side="tgt")


# --------------------------------------------------------------------------- vocabulary


@pytest.mark.parametrize(
    "kind,vocab_size", [("bpe", 40), ("unigram", 90), ("wordlevel", 30), ("char", 20)]
)
def test_vocab_size_is_an_upper_bound(kind, vocab_size):
    c = codec(kind, joint=False, vocab_size=vocab_size)
    for side in SIDES:
        assert 4 < c.vocab_size(side) <= vocab_size


@pytest.mark.parametrize("kind", ["char", "wordlevel"])
def test_char_and_wordlevel_stop_at_what_the_data_has(kind):
    c = codec(kind)
    material = SRC + TGT
    seen = {ch for t in material for ch in t if not ch.isspace()} | {SPACE}
    if kind == "wordlevel":
        seen = {w for t in material for w in t.split()}
    assert c.vocab_size("src") == 4 + len(seen)


def test_unigram_vocab_too_small_for_the_alphabet_is_a_config_error():
    with pytest.raises(ConfigError, match="tokenizer.vocab_size=20"):
        codec("unigram", vocab_size=20)


def test_wordlevel_unknown_word_is_unk():
    c = codec("wordlevel")
    assert c.encode(["Zwei Zebras"], side="src") == [[c.src.token_to_id("Zwei"), UNK_ID]]


def test_wordlevel_min_frequency_drops_rare_words():
    c = codec("wordlevel", min_frequency=2)
    ids = c.encode(["Männer Antriebsradsystem."], side="src")[0]
    assert ids[0] != UNK_ID and ids[1] == UNK_ID


@pytest.mark.parametrize("kind", ["bpe", "unigram"])
def test_unknown_characters_are_unk(kind):
    assert UNK_ID in codec(kind).encode(["Zwei 猫"], side="src")[0]


def test_char_kind_keeps_spaces_as_visible_tokens():
    c = codec("char")
    enc = c.encode_one("ab  cd", side="src")
    assert enc.tokens == ["a", "b", SPACE, "c", "d"]
    assert c.decode([enc.ids], side="src") == ["ab cd"]


# --------------------------------------------------------------------------- offsets


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("lowercase", [False, True])
def test_offsets_point_into_the_original_text(kind, lowercase):
    c = codec(kind, lowercase=lowercase)
    text = "  Männer   lächelt ﬁ"  # leading and doubled spaces; NFKC turns "ﬁ" into "fi"
    enc = c.encode_one(text, side="src")
    assert isinstance(enc, Encoded) and len(enc.offsets) == len(enc.ids) == len(enc.tokens)
    spans = [(s, e) for s, e in enc.offsets if e > s]
    covered = "".join(text[s:e] for s, e in sorted(set(spans)))
    assert covered == "Männerlächeltﬁ"
    assert all(not text[s:e].isspace() and " " not in text[s:e] for s, e in spans)
    assert [s for s, _ in enc.offsets] == sorted(s for s, _ in enc.offsets)


def test_wordlevel_offsets_are_exact_words():
    c = codec("wordlevel", vocab_size=BIG)
    text = "  Männer   lächelt "
    enc = c.encode_one(text, side="src")
    assert [text[s:e] for s, e in enc.offsets] == ["Männer", "lächelt"]
    assert enc.offsets == [(2, 8), (11, 18)]


@pytest.mark.parametrize("kind", ["wordlevel", "bpe"])
def test_offsets_of_hello_world(kind):
    cfg = TokenizerConfig(kind=kind, vocab_size=200)
    c = TextCodec.train(cfg, ["Hello world", "hello there world"], ["Hello world"])
    text = "  Hello   world"
    enc = c.encode_one(text, side="src")
    words: dict[int, str] = {}
    for s, e in enc.offsets:  # group pieces by the whitespace word their span falls in
        word_start = text.rfind(" ", 0, s + 1) + 1
        words[word_start] = words.get(word_start, "") + text[s:e]
    assert list(words.values()) == ["Hello", "world"]


def test_space_piece_gets_an_empty_span_at_the_next_word():
    c = codec("char")
    enc = c.encode_one("ab   cd", side="src")
    assert enc.offsets == [(0, 1), (1, 2), (5, 5), (5, 6), (6, 7)]


# --------------------------------------------------------------------------- decode


def test_decode_cuts_at_eos_and_drops_pad_and_bos():
    c = codec("wordlevel")
    m, z = (c.tgt.token_to_id(w) for w in ("Two", "men"))
    batch = [[BOS_ID, m, z, EOS_ID, m, PAD_ID], [m, PAD_ID, BOS_ID, z], [EOS_ID, m], []]
    assert c.decode(batch) == ["Two men", "Two men", "", ""]


def test_decode_keeps_unk_visible():
    c = codec("wordlevel")
    assert c.decode([[c.tgt.token_to_id("Two"), UNK_ID]]) == ["Two <unk>"]


def test_tokens_rejects_ids_outside_the_vocabulary():
    c = codec("char")
    with pytest.raises(ValueError, match="outside"):
        c.tokens([c.vocab_size("src")], side="src")


@pytest.mark.parametrize("method", ["encode", "decode", "normalize", "tokens", "vocab_size"])
def test_unknown_side_is_a_value_error(method):
    c = codec("char")
    calls = {
        "encode": lambda: c.encode(["a"], side="source"),
        "decode": lambda: c.decode([[4]], side="source"),
        "normalize": lambda: c.normalize("a", side="source"),
        "tokens": lambda: c.tokens([4], side="source"),
        "vocab_size": lambda: c.vocab_size("source"),
    }
    with pytest.raises(ValueError, match="side='source'"):
        calls[method]()


# --------------------------------------------------------------------------- save / load


SAMPLES = [GERMAN, "  A man   in green holds a guitar.", "Zwei Zebras <s> 猫", ""]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("joint", [True, False])
def test_save_then_load_encodes_identically(tmp_path, kind, joint):
    c = codec(kind, joint=joint, lowercase=True)
    c.save(tmp_path / "model")
    names = sorted(p.name for p in (tmp_path / "model").iterdir())
    assert names == (["tokenizer.json"] if joint else ["src_tokenizer.json", "tgt_tokenizer.json"])
    back = TextCodec.load(tmp_path / "model")
    assert back.joint == joint and (back.src is back.tgt) == joint
    for side in SIDES:
        assert back.encode(SAMPLES, side=side) == c.encode(SAMPLES, side=side)
        assert back.encode_one(SAMPLES[1], side=side) == c.encode_one(SAMPLES[1], side=side)
        assert back.vocab_size(side) == c.vocab_size(side)
        ids = c.encode(SAMPLES, side=side)
        assert back.decode(ids, side=side) == c.decode(ids, side=side)
        assert back.normalize(SAMPLES[1], side=side) == c.normalize(SAMPLES[1], side=side)


def test_saving_another_layout_replaces_the_old_one(tmp_path):
    codec("bpe").save(tmp_path)
    codec("char", joint=False).save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "src_tokenizer.json",
        "tgt_tokenizer.json",
    ]
    assert not TextCodec.load(tmp_path).joint
    codec("bpe").save(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["tokenizer.json"]


def test_load_of_a_missing_directory_names_it(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(CheckpointError, match="no tokenizer.json") as info:
        TextCodec.load(missing)
    assert str(missing) in str(info.value)


def test_load_of_half_a_separate_pair_names_the_missing_file(tmp_path):
    codec("char", joint=False).save(tmp_path)
    (tmp_path / "tgt_tokenizer.json").unlink()
    with pytest.raises(CheckpointError, match="tgt_tokenizer.json is missing"):
        TextCodec.load(tmp_path)


@pytest.mark.parametrize("content", [b"not json at all", b'{"version": "1.0"}', b"\xff\xfe\x00"])
def test_load_of_a_garbage_file_names_it(tmp_path, content):
    path = tmp_path / "tokenizer.json"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="not a valid tokenizer file") as info:
        TextCodec.load(tmp_path)
    assert str(path) in str(info.value)


def test_load_rejects_a_tokenizer_with_other_special_ids(tmp_path):
    data = json.loads(codec("wordlevel").src.to_str())
    vocab = data["model"]["vocab"]
    vocab[PAD], vocab["Zwei"] = vocab["Zwei"], vocab[PAD]
    data["added_tokens"] = []
    (tmp_path / "tokenizer.json").write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(CheckpointError, match="not a seq2attn tokenizer"):
        TextCodec.load(tmp_path)


def test_save_leaves_no_temporary_files(tmp_path):
    codec("unigram", joint=False).save(tmp_path)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


# --------------------------------------------------------------------------- bad training text


@pytest.mark.parametrize("kind", KINDS)
def test_training_on_nothing_is_a_data_error(kind):
    cfg = TokenizerConfig(kind=kind, vocab_size=100)
    with pytest.raises(DataError, match="nothing to train"):
        TextCodec.train(cfg, [], [])
    with pytest.raises(DataError, match="nothing to train"):
        TextCodec.train(cfg, ["  ", ""], ["\n"])


def test_separate_training_with_an_empty_target_side_names_it():
    cfg = TokenizerConfig(kind="bpe", vocab_size=100, joint=False)
    with pytest.raises(DataError, match="target text"):
        TextCodec.train(cfg, SRC, [])


def test_min_frequency_that_leaves_nothing_is_a_data_error():
    cfg = replace(TokenizerConfig(kind="wordlevel", vocab_size=100), min_frequency=50)
    with pytest.raises(DataError, match="min_frequency=50"):
        TextCodec.train(cfg, SRC, TGT)
