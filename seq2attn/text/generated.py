"""The built-in generated tasks: toy translation problems that train in a minute on a CPU.

dates (human-written dates -> ISO 8601), reverse / copy / sort (symbol sequences) and lexalign
(a tiny lexicon with reordering, so the word alignment is known by construction). Each task is a
sampler ``rng -> (source, target[, gold links])``; :func:`generate` draws a deduplicated pool,
deterministic for a seed. The registry (sizes, presets, splits) is in :mod:`seq2attn.text.corpora`.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable

from seq2attn.errors import ConfigError

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
TOKEN_TASKS: dict[str, Callable[[list[str]], list[str]]] = {
    "reverse": lambda toks: toks[::-1],
    "copy": lambda toks: list(toks),
    "sort": lambda toks: sorted(toks, key=_SYMBOL_RANK.__getitem__),
}


def _token_sampler(task: str) -> Callable[[random.Random], tuple[str, str]]:
    def sample(rng: random.Random) -> tuple[str, str]:
        toks = [rng.choice(SYMBOLS) for _ in range(rng.randint(3, 10))]
        return " ".join(toks), " ".join(TOKEN_TASKS[task](toks))

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


SAMPLERS: dict[str, Callable[[random.Random], tuple[str, ...]]] = {
    "dates": _sample_date,
    **{task: _token_sampler(task) for task in TOKEN_TASKS},
    "lexalign": _sample_lexalign,  # (source, target, gold links)
}



def generate(name: str, n: int, *, seed: int) -> tuple[list[str], list[str], list[str]]:
    """``n`` (source, target, gold links) triples of a generated task, no source twice, the same
    for the same seed; links are empty for tasks without gold alignments."""
    if n < 0:
        raise ConfigError(f"n={n}; must be >= 0")
    sample, rng = SAMPLERS[name], random.Random(seed)
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
    return src, tgt, links
