"""Source and target tokenizers, built on HF ``tokenizers`` and saved as its JSON.

Every vocabulary starts with the same four specials, so ``PAD_ID`` .. ``UNK_ID`` are 0..3 on
both sides and the model code can use the constants without looking anything up.

Normalization (Unicode form, whitespace collapsing, lowercasing) lives inside the saved
tokenizer, so a model directory carries the exact text pipeline it was trained with, and
``decode(encode(t)) == normalize(t)`` for text made of what the tokenizer has seen.
Spaces are shown as "▁" (Metaspace) rather than byte-level BPE symbols because the tokens end up
as labels on attention heatmaps, where "▁Män" "ner" is readable and "Ã¤" is not.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tokenizers import (
    Encoding,
    Regex,
    Tokenizer,
    decoders,
    models,
    normalizers,
    pre_tokenizers,
    trainers,
)

from seq2attn.config import TokenizerConfig
from seq2attn.errors import CheckpointError, ConfigError, DataError, brief
from seq2attn.fsutil import atomic_write_text, read_limited
from seq2attn.special import BOS_ID, EOS_ID, PAD_ID, SPECIALS, UNK, UNK_ID

SIDES = ("src", "tgt")
SPACE = "▁"  # U+2581, the visible stand-in for a space inside tokens

JOINT_FILE = "tokenizer.json"
SIDE_FILES = {"src": "src_tokenizer.json", "tgt": "tgt_tokenizer.json"}

_UNICODE_FORMS: dict[str, Callable[[], normalizers.Normalizer]] = {
    "nfkc": normalizers.NFKC,
    "nfc": normalizers.NFC,
    "nfd": normalizers.NFD,
    "nfkd": normalizers.NFKD,
}


@dataclass(frozen=True)
class Encoded:
    ids: list[int]
    tokens: list[str]
    # Character spans into the original (un-normalized) input, trimmed of whitespace so that each
    # span lies inside one whitespace-separated word; a piece that is only a space ("▁") gets an
    # empty span at the start of the word that follows it.
    offsets: list[tuple[int, int]]


# --------------------------------------------------------------------------- building


def _normalizer(cfg: TokenizerConfig) -> normalizers.Normalizer:
    steps: list[normalizers.Normalizer] = []
    if cfg.normalization != "none":
        steps.append(_UNICODE_FORMS[cfg.normalization]())
    # Collapse before anything splits on spaces, so "a  b" and "a b" tokenize (and decode) alike.
    steps += [normalizers.Replace(Regex(r"\s+"), " "), normalizers.Strip()]
    if cfg.lowercase:
        steps.append(normalizers.Lowercase())
    return normalizers.Sequence(steps)


def _metaspace_words() -> tuple[pre_tokenizers.PreTokenizer, decoders.Decoder]:
    # "always" marks every word start, including the first, so pieces are the same wherever a
    # word stands and the decoder can drop the leading space it implies.
    return (
        pre_tokenizers.Metaspace(replacement=SPACE, prepend_scheme="always"),
        decoders.Metaspace(replacement=SPACE, prepend_scheme="always"),
    )


def _build_bpe(cfg: TokenizerConfig) -> tuple[Tokenizer, trainers.Trainer]:
    tok = Tokenizer(models.BPE(unk_token=UNK))
    tok.pre_tokenizer, tok.decoder = _metaspace_words()
    trainer = trainers.BpeTrainer(
        vocab_size=cfg.vocab_size,
        min_frequency=cfg.min_frequency,
        special_tokens=list(SPECIALS),
        # BPE keeps every character it sees on top of vocab_size; cap the alphabet so the
        # vocabulary really stays within the bound (the rarest characters become <unk>).
        limit_alphabet=max(1, cfg.vocab_size - len(SPECIALS)),
        show_progress=False,
    )
    return tok, trainer


def _build_unigram(cfg: TokenizerConfig) -> tuple[Tokenizer, trainers.Trainer]:
    tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer, tok.decoder = _metaspace_words()
    trainer = trainers.UnigramTrainer(
        vocab_size=cfg.vocab_size,
        special_tokens=list(SPECIALS),
        unk_token=UNK,
        show_progress=False,
    )
    return tok, trainer


def _build_wordlevel(cfg: TokenizerConfig) -> tuple[Tokenizer, trainers.Trainer]:
    tok = Tokenizer(models.WordLevel(unk_token=UNK))
    # No decoder: tokenizers then joins tokens with single spaces, which is exactly the
    # whitespace-collapsed normalized text.
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    trainer = trainers.WordLevelTrainer(
        vocab_size=cfg.vocab_size,
        min_frequency=cfg.min_frequency,
        special_tokens=list(SPECIALS),
        show_progress=False,
    )
    return tok, trainer


def _build_char(cfg: TokenizerConfig) -> tuple[Tokenizer, trainers.Trainer]:
    # A word-level model over single characters: Metaspace turns spaces into visible "▁"
    # (never prepended, so no space appears that the text did not have), then every character,
    # "▁" included, becomes its own token.
    tok = Tokenizer(models.WordLevel(unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Metaspace(replacement=SPACE, prepend_scheme="never"),
            pre_tokenizers.Split(Regex("."), behavior="isolated"),
        ]
    )
    tok.decoder = decoders.Metaspace(replacement=SPACE, prepend_scheme="never")
    trainer = trainers.WordLevelTrainer(
        vocab_size=cfg.vocab_size,
        min_frequency=cfg.min_frequency,
        special_tokens=list(SPECIALS),
        show_progress=False,
    )
    return tok, trainer


BUILDERS: dict[str, Callable[[TokenizerConfig], tuple[Tokenizer, trainers.Trainer]]] = {
    "bpe": _build_bpe,
    "unigram": _build_unigram,
    "wordlevel": _build_wordlevel,
    "char": _build_char,
}


def _has_specials_first(tok: Tokenizer) -> bool:
    return all(tok.token_to_id(t) == i for i, t in enumerate(SPECIALS))


def _ready(tok: Tokenizer) -> Tokenizer:
    # Text that happens to contain "<s>" or "<unk>" must be tokenized as text, not become a
    # control id. This flag is not stored in the JSON, so it is set after training and loading.
    tok.encode_special_tokens = True
    return tok


def _train_one(cfg: TokenizerConfig, texts: Sequence[str], *, what: str) -> Tokenizer:
    if not any(t and not t.isspace() for t in texts):
        raise DataError(
            f"{what}: nothing to train the tokenizer on ({len(texts)} lines, all empty)"
        )
    if cfg.kind not in BUILDERS:
        raise ConfigError(f"tokenizer.kind={cfg.kind!r}; choose one of: {', '.join(BUILDERS)}")
    tok, trainer = BUILDERS[cfg.kind](cfg)
    tok.normalizer = _normalizer(cfg)
    try:
        tok.train_from_iterator(texts, trainer=trainer, length=len(texts))
    except Exception as e:  # tokenizers raises a bare Exception; translate the one users can fix
        if "not large enough" not in str(e):
            raise
        raise ConfigError(
            f"tokenizer.vocab_size={cfg.vocab_size} is too small for a unigram vocabulary of the "
            f"{what} (it must hold every character seen); raise it or use kind bpe"
        ) from None
    if tok.get_vocab_size() <= len(SPECIALS):
        raise DataError(
            f"{what}: no token survived training (tokenizer.min_frequency={cfg.min_frequency})"
        )
    assert _has_specials_first(tok), "trainer did not put the special tokens at ids 0..3"
    return _ready(tok)


# --------------------------------------------------------------------------- files


TOKENIZER_LIMIT = 1 << 30  # a 1M-piece vocabulary with its merges is well below this


def _read(path: Path, digest: str | None = None) -> Tokenizer:
    """A tokenizer file, never through a symbolic link or from a FIFO; when ``digest`` is given,
    its sha256 must be that (the model directory's manifest records it)."""
    try:
        data = read_limited(path, TOKENIZER_LIMIT, follow=False)
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read the tokenizer ({brief(e)})") from None
    if digest is not None and hashlib.sha256(data).hexdigest() != digest:
        raise CheckpointError(f"{path}: sha256 does not match manifest.json; the file was modified or damaged")
    try:
        tok = Tokenizer.from_str(data.decode("utf-8"))
    # UnicodeDecodeError, or the bare Exception tokenizers raises for bad JSON
    except Exception:  # noqa: BLE001
        raise CheckpointError(f"{path}: not a valid tokenizer file") from None
    if not _has_specials_first(tok):
        specials = " ".join(SPECIALS)
        raise CheckpointError(f"{path}: not a seq2attn tokenizer ({specials} are not ids 0..3)")
    return _ready(tok)


# --------------------------------------------------------------------------- the codec


def _text_ids(ids: list[int]) -> list[int]:
    # Wordlevel and unigram models hold the special strings as ordinary pieces, so text that
    # spells "<pad>", "<s>" or "</s>" would come out as a control id (a PAD inside a sentence
    # would even be masked as padding). Encoded text never yields those ids: it is unknown text.
    if not ids or min(ids) > EOS_ID:  # the common case, checked at C speed
        return ids
    return [max(i, UNK_ID) for i in ids]


def _encoded(text: str, enc: Encoding) -> Encoded:
    ids = _text_ids(enc.ids)
    return Encoded(
        ids=ids,
        tokens=[UNK if i == UNK_ID else t for i, t in zip(ids, enc.tokens)],
        offsets=[_word_span(text, t, s, e) for t, (s, e) in zip(enc.tokens, enc.offsets)],
    )


def _word_span(text: str, token: str, start: int, end: int) -> tuple[int, int]:
    # tokenizers attributes a run of collapsed whitespace to the "▁" that replaced it, and a
    # prepended "▁" to the word's first character. Trimming keeps every span inside one word,
    # which is what merging pieces back into words needs; a lone "▁" gets an empty span where
    # its word starts, so it neither overlaps that word's first piece nor covers a space.
    while start < len(text) and text[start].isspace():
        start += 1
    if token == SPACE:
        return start, start
    end = max(end, start)
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _content(ids: Sequence[int]) -> list[int]:
    """The ids up to the first EOS, without PAD and BOS (UNK stays visible as "<unk>")."""
    out: list[int] = []
    for i in ids:
        i = int(i)  # also accepts numpy / torch scalars
        if i == EOS_ID:
            break
        if i not in (PAD_ID, BOS_ID):
            out.append(i)
    return out


@dataclass(frozen=True, eq=False)
class TextCodec:
    """Source and target tokenizers (one shared object when joint)."""

    src: Tokenizer
    tgt: Tokenizer
    joint: bool

    def __post_init__(self) -> None:
        assert not self.joint or self.src is self.tgt, "a joint codec has one tokenizer"

    @classmethod
    def train(cls, cfg: TokenizerConfig, src_texts: list[str], tgt_texts: list[str]) -> TextCodec:
        if cfg.joint:
            tok = _train_one(cfg, [*src_texts, *tgt_texts], what="source and target text")
            return cls(src=tok, tgt=tok, joint=True)
        src = _train_one(cfg, src_texts, what="source text")
        tgt = _train_one(cfg, tgt_texts, what="target text")
        return cls(src=src, tgt=tgt, joint=False)

    def save(self, directory: str | Path) -> None:
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        if self.joint:
            written, stale = {JOINT_FILE: self.src}, list(SIDE_FILES.values())
        else:
            written = {SIDE_FILES["src"]: self.src, SIDE_FILES["tgt"]: self.tgt}
            stale = [JOINT_FILE]
        for name, tok in written.items():
            atomic_write_text(d / name, tok.to_str(pretty=True))
        # load() picks the layout by which files exist: remove the other layout's leftovers
        # so an older vocabulary in the same directory can never be picked up.
        for name in stale:
            (d / name).unlink(missing_ok=True)

    def file_names(self) -> list[str]:
        """The files :meth:`save` writes."""
        return [JOINT_FILE] if self.joint else list(SIDE_FILES.values())

    @classmethod
    def load(cls, directory: str | Path, *, digests: dict[str, str] | None = None) -> TextCodec:
        """The tokenizer(s) saved in ``directory``; with ``digests`` ({file name: sha256}, from a
        manifest) exactly those files, each checked against its sha256."""
        d = Path(directory)
        if digests is not None:
            if set(digests) == {JOINT_FILE}:
                tok = _read(d / JOINT_FILE, digests[JOINT_FILE])
                return cls(src=tok, tgt=tok, joint=True)
            return cls(src=_read(d / SIDE_FILES["src"], digests[SIDE_FILES["src"]]),
                       tgt=_read(d / SIDE_FILES["tgt"], digests[SIDE_FILES["tgt"]]), joint=False)
        if (d / JOINT_FILE).is_file():
            tok = _read(d / JOINT_FILE)
            return cls(src=tok, tgt=tok, joint=True)
        src, tgt = d / SIDE_FILES["src"], d / SIDE_FILES["tgt"]
        if src.is_file() and tgt.is_file():
            return cls(src=_read(src), tgt=_read(tgt), joint=False)
        if src.is_file() or tgt.is_file():
            missing = tgt if src.is_file() else src
            raise CheckpointError(
                f"{d}: {missing.name} is missing ({src.name} and {tgt.name} go together)"
            )
        raise CheckpointError(f"{d}: no {JOINT_FILE} (or src_/tgt_tokenizer.json)")

    def _side(self, side: str) -> Tokenizer:
        if side == "src":
            return self.src
        if side == "tgt":
            return self.tgt
        raise ValueError(f"side={side!r}; choose one of: {', '.join(SIDES)}")

    def encode(self, texts: list[str], *, side: str) -> list[list[int]]:
        """Token ids per text, without BOS/EOS (the batching code adds what the model needs)."""
        tok = self._side(side)
        return [
            _text_ids(enc.ids) for enc in tok.encode_batch(list(texts), add_special_tokens=False)
        ]

    def encode_one(self, text: str, *, side: str) -> Encoded:
        return _encoded(text, self._side(side).encode(text, add_special_tokens=False))

    def decode(self, ids: list[list[int]], *, side: str = "tgt") -> list[str]:
        """Text per id sequence, cut at the first EOS, without PAD and BOS; UNK shows as "<unk>"."""
        tok = self._side(side)
        return tok.decode_batch([_content(seq) for seq in ids], skip_special_tokens=False)

    def normalize(self, text: str, *, side: str) -> str:
        """The text as the tokenizer sees it: what ``decode(encode(text))`` gives back."""
        return self._side(side).normalizer.normalize_str(text)

    def tokens(self, ids: list[int], *, side: str) -> list[str]:
        tok = self._side(side)
        out = []
        for i in ids:
            piece = tok.id_to_token(int(i))
            if piece is None:
                raise ValueError(
                    f"id {int(i)} is outside the {side} vocabulary ({self.vocab_size(side)} ids)"
                )
            out.append(piece)
        return out

    def vocab_size(self, side: str) -> int:
        return self._side(side).get_vocab_size(with_added_tokens=True)
