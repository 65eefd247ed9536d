"""Corpora: built-in generated tasks, the downloadable Multi30k, and readers for user files.

Every corpus comes as line-aligned :class:`Parallel` pairs split into train/dev/test
(:class:`Splits`). The generated corpora are deterministic for a seed and their dev and test
sets share no source sentence with train. Multi30k is read from a local copy or downloaded from
its official repository, checked against pinned sha256 sums, and never stored in this repository.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import http.client
import os
import random
import tempfile
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from .errors import ConfigError, DataError

SPLITS = ("train", "dev", "test")


@dataclass(frozen=True)
class Parallel:
    """Line-aligned sentence pairs: ``tgt[i]`` is the translation of ``src[i]``."""

    src: list[str]
    tgt: list[str]
    # Gold word alignment of each pair (Pharaoh "i-j", 0-indexed source-target word pairs) for
    # corpora that know it by construction; None for everything else.
    links: list[str] | None = field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        if len(self.src) != len(self.tgt):
            raise DataError(
                f"parallel data has {len(self.src)} source but {len(self.tgt)} target sentences; "
                "they must be aligned one to one"
            )
        if self.links is not None and len(self.links) != len(self.src):
            raise DataError(f"parallel data has {len(self.src)} pairs but {len(self.links)} alignments")

    def cut(self, start: int, end: int) -> Parallel:
        """Pairs ``start:end``, with their gold links when there are any."""
        links = None if self.links is None else self.links[start:end]
        return Parallel(self.src[start:end], self.tgt[start:end], links=links)

    def __len__(self) -> int:
        return len(self.src)


@dataclass(frozen=True)
class Splits:
    train: Parallel
    dev: Parallel
    test: Parallel
    src_lang: str
    tgt_lang: str


@dataclass(frozen=True)
class CorpusInfo:
    name: str
    description: str
    languages: tuple[str, ...]  # the first two are the default direction (source, target)
    sizes: dict[str, int]  # split name ('train', 'dev', 'test') -> number of pairs
    source: str  # "generated (deterministic for a seed)" or the download URL
    preset: dict[str, dict]  # suggested config sections, applied under the user's own config
    generated: bool


# ---------------------------------------------------------------------------------------------
# dates: one date written in many human ways -> ISO 8601

# English names spelled out here: strftime's %A/%B follow the process locale.
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
DATE_RANGE = (dt.date(1950, 1, 1), dt.date(2049, 12, 31))  # so a 2-digit year has one reading


def _month(d: dt.date) -> str:
    return _MONTHS[d.month - 1]


def _weekday(d: dt.date) -> str:
    return _WEEKDAYS[d.weekday()]  # the true weekday of the date, not a random name


def _nth(n: int) -> str:
    suffix = "th" if 11 <= n % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


# Numeric forms read day before month, except year-first forms whose 4-digit year comes first;
# no format puts the month first with a numeric month, so every source has exactly one reading.
DATE_FORMATS: dict[str, Callable[[dt.date], str]] = {
    "weekday d month yyyy": lambda d: f"{_weekday(d)} {d.day} {_month(d)} {d.year}",
    "wkd, d mon yyyy": lambda d: f"{_weekday(d)[:3]}, {d.day} {_month(d)[:3]} {d.year}",
    "weekday, month d, yyyy": lambda d: f"{_weekday(d)}, {_month(d)} {d.day}, {d.year}",
    "d month yyyy": lambda d: f"{d.day} {_month(d)} {d.year}",
    "d mon yyyy": lambda d: f"{d.day} {_month(d)[:3]} {d.year}",
    "dth month yyyy": lambda d: f"{_nth(d.day)} {_month(d)} {d.year}",
    "the dth of month yyyy": lambda d: f"the {_nth(d.day)} of {_month(d)} {d.year}",
    "month d, yyyy": lambda d: f"{_month(d)} {d.day}, {d.year}",
    "mon dth, yyyy": lambda d: f"{_month(d)[:3]} {_nth(d.day)}, {d.year}",
    "mon d, yyyy": lambda d: f"{_month(d)[:3]} {d.day}, {d.year}",
    "yyyy mon d": lambda d: f"{d.year} {_month(d)[:3]} {d.day}",
    "dd-mon-yy": lambda d: f"{d.day:02d}-{_month(d)[:3]}-{d.year % 100:02d}",
    "dd/mm/yy": lambda d: f"{d.day:02d}/{d.month:02d}/{d.year % 100:02d}",
    "dd/mm/yyyy": lambda d: f"{d.day:02d}/{d.month:02d}/{d.year}",
    "dd.mm.yy": lambda d: f"{d.day:02d}.{d.month:02d}.{d.year % 100:02d}",
    "dd.mm.yyyy": lambda d: f"{d.day:02d}.{d.month:02d}.{d.year}",
    "d.m.yyyy": lambda d: f"{d.day}.{d.month}.{d.year}",
    "dd-mm-yyyy": lambda d: f"{d.day:02d}-{d.month:02d}-{d.year}",
    "yyyy/mm/dd": lambda d: f"{d.year}/{d.month:02d}/{d.day:02d}",
    "yyyy-mm-dd": lambda d: d.isoformat(),
    "yyyymmdd": lambda d: f"{d.year}{d.month:02d}{d.day:02d}",
}
# As written twice as often as all-lower or all-upper (str.title would give "21St").
_CASINGS: tuple[Callable[[str], str], ...] = (str, str, str.lower, str.upper)


def _sample_date(rng: random.Random) -> tuple[str, str]:
    first, last = (d.toordinal() for d in DATE_RANGE)
    day = dt.date.fromordinal(rng.randint(first, last))
    fmt = rng.choice(tuple(DATE_FORMATS.values()))
    return rng.choice(_CASINGS)(fmt(day)), day.isoformat()


# ---------------------------------------------------------------------------------------------
# reverse / copy / sort: sequences of 3-10 symbols

SYMBOLS = tuple("abcdefghijklmnopqrst")  # 20 one-letter words; this order is the sort order
_SYMBOL_RANK = {s: i for i, s in enumerate(SYMBOLS)}
_TOKEN_TASKS: dict[str, Callable[[list[str]], list[str]]] = {
    "reverse": lambda toks: toks[::-1],
    "copy": lambda toks: list(toks),
    "sort": lambda toks: sorted(toks, key=_SYMBOL_RANK.__getitem__),
}


def _token_sampler(task: str) -> Callable[[random.Random], tuple[str, str]]:
    def sample(rng: random.Random) -> tuple[str, str]:
        toks = [rng.choice(SYMBOLS) for _ in range(rng.randint(3, 10))]
        return " ".join(toks), " ".join(_TOKEN_TASKS[task](toks))

    return sample


# ---------------------------------------------------------------------------------------------
# lexalign: a tiny lexicon with reordering, so the word alignment is known by construction

LEX_DETERMINERS = {"the": "la", "a": "unu"}
LEX_NOUNS = {"cat": "kato", "dog": "hundo", "bird": "birdo", "fish": "fiso", "horse": "cevalo",
             "mouse": "muso", "girl": "knabino", "boy": "knabo", "king": "rego", "queen": "regino",
             "farmer": "farmisto", "teacher": "instruisto"}
LEX_ADJECTIVES = {"big": "granda", "small": "malgranda", "red": "ruga", "green": "verda",
                  "old": "maljuna", "young": "juna", "happy": "felica", "sad": "trista",
                  "fast": "rapida", "quiet": "trankvila"}
LEX_VERBS = {"sees": "vidas", "likes": "satas", "finds": "trovas", "follows": "sekvas",
             "helps": "helpas", "feeds": "nutras", "paints": "pentras", "calls": "vokas",
             "hears": "audas", "visits": "vizitas"}
LEX_ADVERBS = {"today": "hodiau", "again": "denove", "often": "ofte", "quickly": "rapide"}


def _lex_phrase(rng: random.Random, src: list[str]) -> list[tuple[int, str]]:
    """Append ``det (adj) noun`` to ``src``; return the target phrase ``det noun (adj)`` as
    (source index, target word) pairs: the adjective follows its noun in the target."""
    det = rng.choice(tuple(LEX_DETERMINERS))
    adj = rng.choice(tuple(LEX_ADJECTIVES)) if rng.random() < 0.7 else None
    noun = rng.choice(tuple(LEX_NOUNS))
    out = [(len(src), LEX_DETERMINERS[det])]
    src.append(det)
    if adj is not None:
        adj_at = len(src)
        src.append(adj)
    out.append((len(src), LEX_NOUNS[noun]))
    src.append(noun)
    if adj is not None:
        out.append((adj_at, LEX_ADJECTIVES[adj]))
    return out


def _sample_lexalign(rng: random.Random) -> tuple[str, str, str]:
    """``det (adj) noun verb det (adj) noun (adverb)`` -> subject, object, adverb, verb last."""
    src: list[str] = []
    tgt = _lex_phrase(rng, src)
    verb_at = len(src)
    src.append(rng.choice(tuple(LEX_VERBS)))
    tgt += _lex_phrase(rng, src)
    adverb = rng.choice(tuple(LEX_ADVERBS)) if rng.random() < 0.5 else None
    if adverb is not None:
        tgt.append((len(src), LEX_ADVERBS[adverb]))
        src.append(adverb)
    tgt.append((verb_at, LEX_VERBS[src[verb_at]]))
    links = " ".join(f"{i}-{j}" for j, (i, _) in sorted(enumerate(tgt), key=lambda p: p[1][0]))
    return " ".join(src), " ".join(word for _, word in tgt), links


_SAMPLERS: dict[str, Callable[[random.Random], tuple[str, ...]]] = {
    "dates": _sample_date,
    **{task: _token_sampler(task) for task in _TOKEN_TASKS},
    "lexalign": _sample_lexalign,  # (source, target, gold links)
}


def generate(name: str, n: int, *, seed: int) -> Parallel:
    """``n`` pairs of a generated corpus, no source twice, the same for the same seed."""
    if name not in _SAMPLERS:
        _info(name)  # unknown names get the registry's message
        raise ConfigError(
            f"corpus {name!r} is not generated; choose one of: {', '.join(_SAMPLERS)}"
        )
    if n < 0:
        raise ConfigError(f"n={n}; must be >= 0")
    sample, rng = _SAMPLERS[name], random.Random(seed)
    src: list[str] = []
    tgt: list[str] = []
    links: list[str] = []
    seen: set[str] = set()
    # Each task has far more than 10**6 distinct sources, so this ends for any usable n.
    while len(src) < n:
        s, t, *gold = sample(rng)
        if s not in seen:
            seen.add(s)
            src.append(s)
            tgt.append(t)
            links.extend(gold)
    return Parallel(src, tgt, links=links if len(links) == len(src) and links else None)


# ---------------------------------------------------------------------------------------------
# Multi30k (task 1, raw): downloaded on demand, pinned by sha256

MULTI30K_URL = "https://raw.githubusercontent.com/multi30k/dataset/master/data/task1/raw"
MULTI30K_SPLITS = {"train": "train", "dev": "val", "test": "test_2016_flickr"}  # ours -> theirs
MULTI30K_SHA256 = {
    "test_2016_flickr.cs.gz": "200a4a74cc9560f051924abb9803be008d1908d77f747e9141aeb86dfd2797f1",
    "test_2016_flickr.de.gz": "9204244e408ccb38d2a55cfcd344df15005fc42a07a6e55ca6c52b6ababb8cc8",
    "test_2016_flickr.en.gz": "611d361c6334bc7246101d48097c13cf5c4413c5befc793cc629934359d532d9",
    "test_2016_flickr.fr.gz": "6d326e188d259fb1d04ac19eae3af956559b3a0b93d7635e56c90987c40c8b90",
    "train.cs.gz": "a65adb8b32e3bc664f21ecba7a6e7f6950fd1f405e135f7c312faabdb6255077",
    "train.de.gz": "726e39b2fa9eb9ffb6dc763fb35a179f80fae06ffc5d28b6ace5faa883de28a6",
    "train.en.gz": "d79cfa999dd4c51d2cb42499b6796d5a882c3a8a961923c25a898c90f8bbd56f",
    "train.fr.gz": "622e75069e9f4c577425c4f277116ce66e63a2401c0a2312d90073cb12379a3c",
    "val.cs.gz": "b63226e05c4bd5dd6a42897d74b86a1b9d2c31498252c572b1ea7f7996927fcc",
    "val.de.gz": "f0cba2f995189cf5770f29a8a9a537a3ad3f51657ad873405082ff6863a5e75a",
    "val.en.gz": "14f7d25ddd868909a9213e361768460edcacdd6ab9d1e77b92560dc10c10dc28",
    "val.fr.gz": "ca3106f1a72390591d25f6c45cb4cd39dec4cd3f123e099748a3ce5256c160e9",
}
_DOWNLOAD_TIMEOUT_S = 60


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror or e})") from None
    return digest.hexdigest()


def _mismatch(what: str, actual: str, expected: str) -> DataError:
    return DataError(
        f"{what}: sha256 {actual[:12]}... differs from the pinned {expected[:12]}...; "
        "the file is corrupt or not the official Multi30k release, replace it"
    )


def _why(e: Exception) -> str:
    if isinstance(e, urllib.error.HTTPError):
        return f"HTTP {e.code} {e.reason}"
    if isinstance(e, urllib.error.URLError):
        return str(e.reason)
    return str(e) or type(e).__name__


def _fetch(url: str, out: BinaryIO) -> str:
    """Stream ``url`` into the open file ``out``; return its sha256. Network errors: DataError."""
    fname, digest = url.rsplit("/", 1)[-1], hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=_DOWNLOAD_TIMEOUT_S) as response:
            for chunk in iter(lambda: response.read(1 << 16), b""):
                digest.update(chunk)
                out.write(chunk)
    except (OSError, http.client.HTTPException, ValueError) as e:  # URLError is an OSError
        raise DataError(
            f"could not download {url} ({_why(e)}); pass --data-dir DIR with multi30k/{fname} "
            "in it, or set SEQ2ATTN_DATA"
        ) from None
    return digest.hexdigest()


def _download(url: str, dest: Path, expected: str) -> None:
    """Download to a temp file beside ``dest``, check it, then rename: no partial file remains."""
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    except OSError as e:
        raise DataError(
            f"{dest.parent}: cannot write the download cache ({e.strerror or e}); "
            "set SEQ2ATTN_CACHE to a writable directory"
        ) from None
    try:
        with os.fdopen(fd, "wb") as out:
            actual = _fetch(url, out)
        if actual != expected:
            raise _mismatch(url, actual, expected)
        os.replace(tmp, dest)
    finally:
        Path(tmp).unlink(missing_ok=True)  # a no-op after the rename


def _cache_root(cache_dir: str | Path | None) -> Path:
    if cache_dir is not None:
        return Path(cache_dir)
    return Path(os.environ.get("SEQ2ATTN_CACHE") or Path.home() / ".cache" / "seq2attn")


def multi30k_file(
    fname: str, *, data_dir: str | Path | None, base_url: str, cache_dir: str | Path | None
) -> Path:
    """A verified local path to one Multi30k file: the user's copy, the cache, or a download."""
    expected = MULTI30K_SHA256[fname]
    local = data_dir if data_dir is not None else os.environ.get("SEQ2ATTN_DATA") or None
    if local is not None:
        for path in (Path(local) / "multi30k" / fname, Path(local) / fname):
            if path.is_file():
                actual = _sha256(path)
                if actual != expected:
                    raise _mismatch(str(path), actual, expected)
                return path
    cached = _cache_root(cache_dir) / "multi30k" / fname
    # A cached file that fails the check is downloaded again: the rename replaces it atomically.
    if not (cached.is_file() and _sha256(cached) == expected):
        _download(f"{base_url.rstrip('/')}/{fname}", cached, expected)
    return cached


def _load_multi30k(
    src_lang: str, tgt_lang: str, *, data_dir: str | Path | None, base_url: str,
    cache_dir: str | Path | None,
) -> Splits:
    def path(fname: str) -> Path:
        return multi30k_file(fname, data_dir=data_dir, base_url=base_url, cache_dir=cache_dir)

    parts = {
        ours: read_parallel(path(f"{theirs}.{src_lang}.gz"), path(f"{theirs}.{tgt_lang}.gz"))
        for ours, theirs in MULTI30K_SPLITS.items()
    }
    return Splits(**parts, src_lang=src_lang, tgt_lang=tgt_lang)


# ---------------------------------------------------------------------------------------------
# the registry

_SMALL = {"emb_size": 64, "hidden_size": 128, "dec_hidden_size": 128, "dropout": 0.1}
_TOKEN_PRESET = {
    "tokenizer": {"kind": "wordlevel"},
    "model": dict(_SMALL),
    "train": {"batch_tokens": 2048, "validate_every": 200, "lr": 0.002},
    "data": {"max_length": 32},
}
_TOKEN_TEXT = {
    "reverse": "the same symbols in reverse order",
    "copy": "the same symbols",
    "sort": "the symbols sorted a < b < ... < t",
}
_GENERATED = "generated (deterministic for a seed)"

CORPORA: dict[str, CorpusInfo] = {
    "dates": CorpusInfo(
        name="dates",
        description="a date written in one of 21 human formats (e.g. 'Sat, 21 Nov 2026', "
        "'21/11/26') -> ISO 8601 (2026-11-21); years 1950-2049",
        languages=("human", "iso"),
        sizes={"train": 20_000, "dev": 1_000, "test": 1_000},
        source=_GENERATED,
        preset={
            "tokenizer": {"kind": "char"},
            "model": dict(_SMALL),
            "train": {"batch_tokens": 2048, "validate_every": 250, "lr": 0.002},
            "data": {"max_length": 64, "dev_size": 500},
        },
        generated=True,
    ),
    **{
        task: CorpusInfo(
            name=task,
            description=f"3-10 symbols from a..t (e.g. 'c a t') -> {_TOKEN_TEXT[task]}",
            languages=("src", "tgt"),
            sizes={"train": 10_000, "dev": 500, "test": 500},
            source=_GENERATED,
            preset={section: dict(values) for section, values in _TOKEN_PRESET.items()},
            generated=True,
        )
        for task in _TOKEN_TASKS
    },
    "lexalign": CorpusInfo(
        name="lexalign",
        description="a toy language pair with a 38-word lexicon, adjective after noun and verb "
        "last (e.g. 'the red cat sees a dog' -> 'la kato ruga unu hundo vidas'); gold word "
        "alignments in {split}.align",
        languages=("src", "tgt"),
        sizes={"train": 10_000, "dev": 500, "test": 500},
        source=_GENERATED,
        preset={section: dict(values) for section, values in _TOKEN_PRESET.items()},
        generated=True,
    ),
    "multi30k": CorpusInfo(
        name="multi30k",
        description="Multi30k task 1: image descriptions in German, English, French and Czech",
        languages=("de", "en", "fr", "cs"),
        sizes={"train": 29_000, "dev": 1_014, "test": 1_000},
        source=MULTI30K_URL,
        preset={
            "tokenizer": {"kind": "bpe", "vocab_size": 8000},
            "model": {"emb_size": 256, "hidden_size": 256, "dec_hidden_size": 512, "dropout": 0.3},
            "train": {"batch_tokens": 4096, "validate_every": 1000, "lr": 0.001},
            "data": {"max_length": 80},
        },
        generated=False,
    ),
}


def _info(name: str) -> CorpusInfo:
    if name not in CORPORA:
        raise ConfigError(f"corpus {name!r} is unknown; choose one of: {', '.join(CORPORA)}")
    return CORPORA[name]


def _languages(info: CorpusInfo, src_lang: str | None, tgt_lang: str | None) -> tuple[str, str]:
    """Check the requested direction; a missing side defaults to the corpus's usual pair."""
    for option, lang in (("src_lang", src_lang), ("tgt_lang", tgt_lang)):
        if lang is not None and lang not in info.languages:
            raise ConfigError(
                f"{option}={lang!r} is not a language of corpus {info.name!r}; "
                f"choose one of: {', '.join(info.languages)}"
            )
    first, second = info.languages[:2]
    src = src_lang if src_lang is not None else (first if tgt_lang != first else second)
    tgt = tgt_lang if tgt_lang is not None else (second if src != second else first)
    if src == tgt:
        raise ConfigError(
            f"src_lang and tgt_lang are both {src!r}; choose two different languages of corpus "
            f"{info.name!r}: {', '.join(info.languages)}"
        )
    if info.generated and (src, tgt) != (first, second):
        raise ConfigError(
            f"corpus {info.name!r} goes from {first} to {second} only; "
            f"got src_lang={src!r}, tgt_lang={tgt!r}"
        )
    return src, tgt


def load_corpus(
    name: str,
    *,
    src_lang: str | None = None,
    tgt_lang: str | None = None,
    data_dir: str | Path | None = None,
    seed: int = 1,
    base_url: str = MULTI30K_URL,
    cache_dir: str | Path | None = None,
) -> Splits:
    """The train/dev/test splits of a registered corpus (see :data:`CORPORA`)."""
    info = _info(name)
    src, tgt = _languages(info, src_lang, tgt_lang)
    if not info.generated:
        return _load_multi30k(src, tgt, data_dir=data_dir, base_url=base_url, cache_dir=cache_dir)
    # One deduplicated pool cut in three: no source can be in two splits.
    pool = generate(name, sum(info.sizes.values()), seed=seed)
    parts, start = {}, 0
    for split in SPLITS:
        end = start + info.sizes[split]
        parts[split] = pool.cut(start, end)
        start = end
    return Splits(**parts, src_lang=src, tgt_lang=tgt)


# ---------------------------------------------------------------------------------------------
# user files


def _read_bytes(path: Path) -> bytes:
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if path.is_dir():
        raise DataError(f"{path}: is a directory; expected a text file")
    try:
        if path.suffix.lower() == ".gz":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (gzip.BadGzipFile, EOFError, zlib.error) as e:  # BadGzipFile is an OSError: first
        raise DataError(f"{path}: not a valid gzip file ({e}); re-create or unzip it") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror or e})") from None


def read_lines(path: str | Path) -> list[str]:
    """The lines of a UTF-8 text file (``.gz``: gzipped), without their line ends.

    Empty lines are kept: in a corpus or a file to translate, line ``i`` must stay line ``i``.
    """
    path = Path(path)
    data = _read_bytes(path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise DataError(
            f"{path} line {line}: not valid UTF-8; convert the file, e.g. iconv -t UTF-8"
        ) from None
    # A BOM would otherwise become part of the first sentence.
    text = text.removeprefix("\ufeff")
    # split("\n"), not splitlines(): that also breaks at \x0b, \x1c, U+2028 ... inside a
    # sentence and would misalign parallel files.
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()  # the final newline ends the last line; it does not start another
    if not lines:
        raise DataError(f"{path}: empty file")
    return [line.removesuffix("\r") for line in lines]


def read_parallel(src_path: str | Path, tgt_path: str | Path) -> Parallel:
    """Two line-aligned files: line ``i`` of ``tgt_path`` translates line ``i`` of ``src_path``."""
    src, tgt = read_lines(src_path), read_lines(tgt_path)
    if len(src) != len(tgt):
        raise DataError(
            f"{src_path} has {len(src)} lines but {tgt_path} has {len(tgt)} lines; "
            "the files must be line-aligned"
        )
    return Parallel(src, tgt)


def read_tsv(path: str | Path) -> Parallel:
    """One ``source<TAB>target`` pair per line."""
    src: list[str] = []
    tgt: list[str] = []
    for number, line in enumerate(read_lines(path), start=1):
        fields = line.split("\t")
        if len(fields) != 2:
            raise DataError(
                f"{path} line {number}: expected source<TAB>target, found {len(fields) - 1} tabs"
            )
        src.append(fields[0])
        tgt.append(fields[1])
    return Parallel(src, tgt)


def _write_atomic(path: Path, lines: list[str]) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # newline="": write "\n" as is on every platform, as read_lines expects
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.writelines(line + "\n" for line in lines)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)  # a no-op after the rename


def write_splits(splits: Splits, out_dir: str | Path) -> list[Path]:
    """Write ``{train,dev,test}.{src,tgt}`` into ``out_dir``, each file replaced atomically, and
    ``{split}.align`` (Pharaoh links, 0-indexed) for the splits that carry gold alignments."""
    out = Path(out_dir)
    jobs = [
        (out / f"{split}.{side}", getattr(getattr(splits, split), side))
        for split in SPLITS
        for side in ("src", "tgt")
    ]
    jobs += [(out / f"{split}.align", getattr(splits, split).links) for split in SPLITS
             if getattr(splits, split).links is not None]
    for path, lines in jobs:
        bad = next((i for i, line in enumerate(lines, start=1) if "\n" in line), None)
        if bad is not None:
            raise DataError(
                f"{path.name} sentence {bad}: contains a line break, which would misalign "
                "the files; remove it"
            )
    try:
        out.mkdir(parents=True, exist_ok=True)
        for path, lines in jobs:
            _write_atomic(path, lines)
    except OSError as e:
        raise DataError(f"{out}: cannot write ({e.strerror or e})") from None
    return [path for path, _ in jobs]
