"""Corpora: generators, splits, Multi30k (local copy and offline downloads), user-file readers."""

from __future__ import annotations

import datetime as dt
import functools
import gzip
import hashlib
import http.server
import socket
import threading
from dataclasses import fields
from pathlib import Path
from typing import get_type_hints

import pytest

from seq2attn.config import Config
from seq2attn.errors import ConfigError, DataError
from seq2attn.text import corpora, generated
from seq2attn.text.corpora import (
    CORPORA,
    Parallel,
    Splits,
    generate,
    load_corpus,
    read_lines,
    read_parallel,
    read_tsv,
    write_splits,
)
from seq2attn.text.generated import DATE_FORMATS, SYMBOLS

# CI clones the repository with shared/ beside it, as here: <repo>/../shared/corpora
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "corpora"
GENERATED = ("dates", "reverse", "copy", "sort", "lexalign")
NOWHERE = "file:///nowhere"  # a base URL that fails: proves no download was needed


@pytest.fixture(scope="session")
def dates() -> Splits:
    return load_corpus("dates")


@pytest.fixture
def shared() -> Path:
    if not (SHARED / "multi30k").is_dir():
        pytest.skip(f"{SHARED}/multi30k is absent")
    return SHARED


@pytest.fixture(autouse=True)
def _no_env(monkeypatch):
    # The user's own data and cache locations must not leak into the tests.
    monkeypatch.delenv("SEQ2ATTN_DATA", raising=False)
    monkeypatch.delenv("SEQ2ATTN_CACHE", raising=False)


# --- the registry --------------------------------------------------------------------------------


def test_registry_names_and_unknown_name():
    assert list(CORPORA) == ["dates", "reverse", "copy", "sort", "lexalign", "multi30k"]
    assert all(info.name == name for name, info in CORPORA.items())
    with pytest.raises(ConfigError) as e:
        load_corpus("xyz")
    assert str(e.value) == (
        "corpus 'xyz' is unknown; choose one of: dates, reverse, copy, sort, lexalign, multi30k"
    )


@pytest.mark.parametrize("name", list(CORPORA))
def test_presets_name_only_real_config_options(name):
    sections = get_type_hints(Config)
    for section, values in CORPORA[name].preset.items():
        assert section in sections
        assert set(values) <= {f.name for f in fields(sections[section])}


def test_generate_rejects_unknown_and_downloadable_corpora():
    with pytest.raises(ConfigError, match="'xyz' is unknown"):
        generate("xyz", 3, seed=1)
    with pytest.raises(ConfigError, match="'multi30k' is not generated; choose one of: dates"):
        generate("multi30k", 3, seed=1)


@pytest.mark.parametrize(
    ("name", "kwargs", "needle"),
    [
        ("dates", {"src_lang": "de"}, "src_lang='de' is not a language of corpus 'dates'; choose"),
        ("dates", {"tgt_lang": "en"}, "choose one of: human, iso"),
        ("reverse", {"tgt_lang": "en"}, "choose one of: src, tgt"),
        ("dates", {"src_lang": "iso"}, "goes from human to iso only"),
        ("multi30k", {"src_lang": "xx"}, "choose one of: de, en, fr, cs"),
        ("multi30k", {"src_lang": "en", "tgt_lang": "en"}, "both 'en'"),
    ],
)
def test_bad_languages(tmp_path, name, kwargs, needle):
    # Checked before any file is looked for: the bogus URL and empty dirs are never touched.
    with pytest.raises(ConfigError, match=needle):
        load_corpus(name, data_dir=tmp_path, cache_dir=tmp_path, base_url=NOWHERE, **kwargs)


# --- generated corpora ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", GENERATED)
def test_generate_is_deterministic_for_a_seed(name):
    a, b, c = (generate(name, 200, seed=s) for s in (7, 7, 8))
    assert a == b
    assert a.src != c.src
    assert len(a) == 200 and len(set(a.src)) == 200
    assert len(generate(name, 0, seed=1)) == 0


@pytest.mark.parametrize("name", GENERATED)
def test_splits_have_documented_sizes_and_are_disjoint(name, dates):
    splits = dates if name == "dates" else load_corpus(name)
    assert {s: len(getattr(splits, s)) for s in ("train", "dev", "test")} == CORPORA[name].sizes
    assert (splits.src_lang, splits.tgt_lang) == CORPORA[name].languages
    train, dev, test = (set(p.src) for p in (splits.train, splits.dev, splits.test))
    assert not train & dev and not train & test and not dev & test
    assert load_corpus(name, seed=2).train.src != splits.train.src


@pytest.mark.parametrize(
    ("name", "expect"),
    [
        ("reverse", lambda toks: toks[::-1]),
        ("copy", lambda toks: toks),
        ("sort", sorted),  # the fixed order a < ... < t is the alphabet's
    ],
)
def test_token_task_targets(name, expect):
    pairs = generate(name, 2000, seed=3)
    lengths = set()
    for src, tgt in zip(pairs.src, pairs.tgt):
        toks = src.split(" ")
        assert set(toks) <= set(SYMBOLS)
        assert tgt.split(" ") == expect(toks)
        lengths.add(len(toks))
    assert lengths == set(range(3, 11))


def test_token_task_known_answers():
    assert len(SYMBOLS) == 20
    assert generated.TOKEN_TASKS["sort"](["t", "c", "a", "c"]) == ["a", "c", "c", "t"]
    assert generated.TOKEN_TASKS["reverse"](["a", "b", "c"]) == ["c", "b", "a"]


# --- dates ---------------------------------------------------------------------------------------

SAT = dt.date(2026, 11, 21)
EARLY = dt.date(2001, 2, 3)  # a Saturday too; single-digit day and month
KNOWN = {  # format: (SAT, EARLY), written by hand
    "weekday d month yyyy": ("Saturday 21 November 2026", "Saturday 3 February 2001"),
    "wkd, d mon yyyy": ("Sat, 21 Nov 2026", "Sat, 3 Feb 2001"),
    "weekday, month d, yyyy": ("Saturday, November 21, 2026", "Saturday, February 3, 2001"),
    "d month yyyy": ("21 November 2026", "3 February 2001"),
    "d mon yyyy": ("21 Nov 2026", "3 Feb 2001"),
    "dth month yyyy": ("21st November 2026", "3rd February 2001"),
    "the dth of month yyyy": ("the 21st of November 2026", "the 3rd of February 2001"),
    "month d, yyyy": ("November 21, 2026", "February 3, 2001"),
    "mon dth, yyyy": ("Nov 21st, 2026", "Feb 3rd, 2001"),
    "mon d, yyyy": ("Nov 21, 2026", "Feb 3, 2001"),
    "yyyy mon d": ("2026 Nov 21", "2001 Feb 3"),
    "dd-mon-yy": ("21-Nov-26", "03-Feb-01"),
    "dd/mm/yy": ("21/11/26", "03/02/01"),
    "dd/mm/yyyy": ("21/11/2026", "03/02/2001"),
    "dd.mm.yy": ("21.11.26", "03.02.01"),
    "dd.mm.yyyy": ("21.11.2026", "03.02.2001"),
    "d.m.yyyy": ("21.11.2026", "3.2.2001"),
    "dd-mm-yyyy": ("21-11-2026", "03-02-2001"),
    "yyyy/mm/dd": ("2026/11/21", "2001/02/03"),
    "yyyy-mm-dd": ("2026-11-21", "2001-02-03"),
    "yyyymmdd": ("20261121", "20010203"),
}


def test_every_date_format_has_known_answers():
    assert set(KNOWN) == set(DATE_FORMATS) and 15 <= len(DATE_FORMATS) <= 25


@pytest.mark.parametrize("fmt", list(KNOWN))
def test_date_format_known_answers(fmt):
    assert (DATE_FORMATS[fmt](SAT), DATE_FORMATS[fmt](EARLY)) == KNOWN[fmt]


@pytest.mark.parametrize(
    ("day", "text"),
    [(1, "1st"), (2, "2nd"), (3, "3rd"), (4, "4th"), (11, "11th"), (12, "12th"), (13, "13th"),
     (21, "21st"), (22, "22nd"), (23, "23rd"), (30, "30th"), (31, "31st")],
)
def test_ordinals(day, text):
    assert DATE_FORMATS["dth month yyyy"](dt.date(2020, 1, day)).split()[0] == text


def test_two_digit_years_cover_1950_to_2049():
    assert DATE_FORMATS["dd/mm/yy"](dt.date(1950, 1, 1)) == "01/01/50"
    assert DATE_FORMATS["dd/mm/yy"](dt.date(1999, 12, 31)) == "31/12/99"
    assert DATE_FORMATS["dd/mm/yy"](dt.date(2000, 1, 1)) == "01/01/00"
    assert DATE_FORMATS["dd/mm/yy"](dt.date(2049, 12, 31)) == "31/12/49"


def test_date_sources_have_one_reading():
    # No two dates may share a source in any format and any casing, or the target is ambiguous;
    # these years hold every day/month swap and the 2-digit-year edges.
    seen: dict[str, dt.date] = {}
    for year in (1950, 1999, 2000, 2001, 2012, 2049):
        day = dt.date(year, 1, 1)
        while day.year == year:
            for fmt in DATE_FORMATS.values():
                assert seen.setdefault(fmt(day).lower(), day) == day, fmt(day)
            day += dt.timedelta(days=1)


def test_dates_targets_are_iso_and_weekdays_true(dates):
    weekdays = [w.lower() for w in generated._WEEKDAYS]
    casings = {"as written": 0, "lower": 0, "upper": 0}
    for src, tgt in zip(dates.train.src + dates.test.src, dates.train.tgt + dates.test.tgt):
        day = dt.date.fromisoformat(tgt)
        assert day.isoformat() == tgt and 1950 <= day.year <= 2049
        named = [w for w in weekdays if src.lower().startswith((w, w[:3] + ","))]
        if named:
            assert named[0] == weekdays[day.weekday()], src
        casings["upper" if src.isupper() else "lower" if src.islower() else "as written"] += 1
    assert all(count > 1000 for count in casings.values())


def test_dates_use_every_format(dates):
    # Each format leaves a fingerprint in the lowercased source; check a few distinctive ones.
    text = "\n".join(dates.train.src).lower()
    for needle in ("the ", "th of ", "day, ", "sat, ", "/", ".", "-"):
        assert needle in text


# --- Multi30k from the shared copy ----------------------------------------------------------------


def test_multi30k_from_shared_copy(shared, tmp_path):
    # A bogus URL and an empty cache prove nothing is downloaded.
    splits = load_corpus("multi30k", data_dir=shared, base_url=NOWHERE, cache_dir=tmp_path)
    assert (splits.src_lang, splits.tgt_lang) == ("de", "en")
    assert [len(splits.train), len(splits.dev), len(splits.test)] == [29_000, 1_014, 1_000]
    first = "Zwei junge weiße Männer sind im Freien in der Nähe vieler Büsche."
    assert splits.train.src[0] == first
    assert splits.train.tgt[0] == "Two young, White males are outside near many bushes."
    assert list(tmp_path.iterdir()) == []


def test_multi30k_other_pair_from_env(shared, tmp_path, monkeypatch):
    monkeypatch.setenv("SEQ2ATTN_DATA", str(shared))
    splits = load_corpus("multi30k", src_lang="fr", tgt_lang="cs", base_url=NOWHERE,
                         cache_dir=tmp_path)
    assert [len(splits.train), len(splits.dev), len(splits.test)] == [29_000, 1_014, 1_000]
    assert load_corpus("multi30k", src_lang="en", cache_dir=tmp_path).tgt_lang == "de"


# --- Multi30k downloads, offline -----------------------------------------------------------------


def _fake_release(root: Path, monkeypatch, *, langs=("de", "en")) -> Path:
    """Small gzipped Multi30k look-alikes in ``root``, their sha256 pinned in place of the real."""
    root.mkdir(parents=True, exist_ok=True)
    for theirs in corpora.MULTI30K_SPLITS.values():
        for lang in langs:
            name = f"{theirs}.{lang}.gz"
            data = gzip.compress(f"{theirs} {lang} 1\n{theirs} {lang} 2\n".encode(), mtime=0)
            (root / name).write_bytes(data)
            monkeypatch.setitem(corpora.MULTI30K_SHA256, name, hashlib.sha256(data).hexdigest())
    return root


def _check_fake(splits: Splits) -> None:
    assert splits.train.src == ["train de 1", "train de 2"]
    assert splits.dev.tgt == ["val en 1", "val en 2"]
    assert splits.test.src == ["test_2016_flickr de 1", "test_2016_flickr de 2"]


def _cache_files(cache: Path) -> list[str]:
    return sorted(p.name for p in (cache / "multi30k").iterdir())


def test_download_via_file_url_then_reuse_cache(tmp_path, monkeypatch):
    server = _fake_release(tmp_path / "server", monkeypatch)
    cache = tmp_path / "cache"
    _check_fake(load_corpus("multi30k", base_url=server.as_uri(), cache_dir=cache))
    assert _cache_files(cache) == sorted(p.name for p in server.iterdir())  # no temp files
    # Verified cached files are reused: the source is gone now.
    _check_fake(load_corpus("multi30k", base_url=NOWHERE, cache_dir=cache))


def test_cache_dir_from_env_and_corrupt_cache_is_downloaded_again(tmp_path, monkeypatch):
    server = _fake_release(tmp_path / "server", monkeypatch)
    cache = tmp_path / "cache"
    monkeypatch.setenv("SEQ2ATTN_CACHE", str(cache))
    (cache / "multi30k").mkdir(parents=True)
    (cache / "multi30k" / "train.de.gz").write_bytes(b"truncated")
    _check_fake(load_corpus("multi30k", base_url=server.as_uri() + "/"))
    fresh = (cache / "multi30k" / "train.de.gz").read_bytes()
    assert fresh == (server / "train.de.gz").read_bytes()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep the test output clean
        pass


@pytest.fixture
def http_url(tmp_path, monkeypatch):
    """A local HTTP server on 127.0.0.1 serving tmp_path/'www'; shut down after the test."""
    for var in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "*")
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_download_via_local_http_server(tmp_path, monkeypatch, http_url):
    url, root = http_url
    _fake_release(root, monkeypatch, langs=("en", "de"))
    cache = tmp_path / "cache"
    _check_fake(load_corpus("multi30k", base_url=url, cache_dir=cache))
    assert len(_cache_files(cache)) == 6


def test_http_404_names_the_url(tmp_path, http_url):
    url, _ = http_url
    with pytest.raises(DataError) as e:
        load_corpus("multi30k", base_url=url, cache_dir=tmp_path / "cache")
    message = str(e.value)
    assert f"{url}/train.de.gz" in message and "404" in message
    assert "--data-dir" in message and "SEQ2ATTN_DATA" in message and "\n" not in message
    assert _cache_files(tmp_path / "cache") == []


def test_connection_refused_and_missing_file_url(tmp_path):
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for url in (f"http://127.0.0.1:{port}", (tmp_path / "absent").as_uri()):
        with pytest.raises(DataError, match="could not download .*train.de.gz.*--data-dir"):
            load_corpus("multi30k", base_url=url, cache_dir=tmp_path / "cache")
    assert _cache_files(tmp_path / "cache") == []


def test_download_checksum_mismatch_leaves_no_file(tmp_path, monkeypatch):
    server = _fake_release(tmp_path / "server", monkeypatch)
    monkeypatch.setitem(corpora.MULTI30K_SHA256, "train.de.gz", "0" * 64)
    cache = tmp_path / "cache"
    pattern = r"train\.de\.gz: sha256 [0-9a-f]{12}\.\.\. differs from the pinned 000000000000"
    with pytest.raises(DataError, match=pattern):
        load_corpus("multi30k", base_url=server.as_uri(), cache_dir=cache)
    assert _cache_files(cache) == []


def test_local_copy_checksum_mismatch(tmp_path, monkeypatch):
    data = _fake_release(tmp_path / "data" / "multi30k", monkeypatch)
    (data / "val.en.gz").write_bytes(gzip.compress(b"tampered\n"))
    with pytest.raises(DataError, match=r"data/multi30k/val\.en\.gz: sha256 .* differs"):
        load_corpus("multi30k", data_dir=tmp_path / "data", cache_dir=tmp_path / "cache")


def test_local_copy_flat_layout(tmp_path, monkeypatch):
    data = _fake_release(tmp_path / "flat", monkeypatch)
    _check_fake(load_corpus("multi30k", data_dir=data, base_url=NOWHERE,
                            cache_dir=tmp_path / "cache"))


# --- user files -----------------------------------------------------------------------------------


def test_read_lines_plain_gz_crlf_bom_and_empty_lines(tmp_path):
    plain = tmp_path / "a.txt"
    plain.write_bytes("\ufeffeins\r\n\r\nzwei\u2028drei\nvier".encode())
    assert read_lines(plain) == ["eins", "", "zwei\u2028drei", "vier"]
    packed = tmp_path / "a.txt.gz"
    packed.write_bytes(gzip.compress("α\n\n".encode()))
    assert read_lines(packed) == ["α", ""]
    blank = tmp_path / "blank.txt"
    blank.write_bytes(b"\n")
    assert read_lines(blank) == [""]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.txt", None, "{path}: no such file"),
        ("empty.txt", b"", "{path}: empty file"),
        ("empty.gz", gzip.compress(b"", mtime=0), "{path}: empty file"),
        ("latin1.txt", "ok\nok\nMänner\n".encode("latin-1"), "{path} line 3: not valid UTF-8"),
        ("corrupt.gz", b"this is not gzip", "{path}: not a valid gzip file"),
        ("truncated.gz", gzip.compress(b"a\n" * 1000, mtime=0)[:-12], "{path}: not a valid gzip file"),
    ],
)
def test_read_lines_bad_input(tmp_path, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DataError) as e:
        read_lines(path)
    assert str(e.value).startswith(message.format(path=path))


def test_read_lines_directory(tmp_path):
    with pytest.raises(DataError, match="is a directory"):
        read_lines(tmp_path)


def test_read_parallel(tmp_path):
    (tmp_path / "s").write_text("a\nb\n", encoding="utf-8")
    (tmp_path / "t").write_text("A\nB\n", encoding="utf-8")
    (tmp_path / "u").write_text("A\nB\nC\n", encoding="utf-8")
    assert read_parallel(tmp_path / "s", tmp_path / "t") == Parallel(["a", "b"], ["A", "B"])
    with pytest.raises(DataError) as e:
        read_parallel(tmp_path / "s", tmp_path / "u")
    assert str(e.value) == (
        f"{tmp_path / 's'} has 2 lines but {tmp_path / 'u'} has 3 lines; "
        "the files must be line-aligned"
    )
    with pytest.raises(DataError, match="no such file"):
        read_parallel(tmp_path / "s", tmp_path / "nope")


def test_read_tsv(tmp_path):
    good = tmp_path / "good.tsv"
    good.write_text("guten Tag\tgood day\n\t\n", encoding="utf-8")
    assert read_tsv(good) == Parallel(["guten Tag", ""], ["good day", ""])
    for text, line in (("a\tb\nno tab here\n", 2), ("a\tb\tc\n", 1)):
        bad = tmp_path / "bad.tsv"
        bad.write_text(text, encoding="utf-8")
        with pytest.raises(DataError, match=rf"bad\.tsv line {line}: expected source<TAB>target"):
            read_tsv(bad)


def test_parallel_must_be_aligned():
    with pytest.raises(DataError, match="1 source but 2 target"):
        Parallel(["a"], ["b", "c"])


def test_write_splits_round_trip(tmp_path):
    splits = load_corpus("reverse")
    out = tmp_path / "deep" / "out"
    paths = write_splits(splits, out)
    names = ["train.src", "train.tgt", "dev.src", "dev.tgt", "test.src", "test.tgt"]
    assert paths == [out / n for n in names]
    assert sorted(p.name for p in out.iterdir()) == sorted([*names, ".seq2attn-prepared.json"])  # no temp files
    for split in ("train", "dev", "test"):
        back = read_parallel(out / f"{split}.src", out / f"{split}.tgt")
        assert back == getattr(splits, split)
    small = Splits(*(Parallel(["x", ""], ["y", ""]),) * 3, src_lang="src", tgt_lang="tgt")
    write_splits(small, out)  # replaces the files already there
    assert read_lines(out / "dev.tgt") == ["y", ""]


def test_write_splits_never_replaces_a_users_file_without_force(tmp_path):
    mine = tmp_path / "train.src"
    mine.write_text("my own corpus\n")
    with pytest.raises(DataError, match="train.src: exists and was not written by seq2attn; pass --force"):
        write_splits(load_corpus("reverse"), tmp_path)
    assert mine.read_text() == "my own corpus\n" and sorted(p.name for p in tmp_path.iterdir()) == ["train.src"]
    write_splits(load_corpus("reverse"), tmp_path, force=True)
    assert mine.read_text() != "my own corpus\n"
    write_splits(load_corpus("copy"), tmp_path)  # its own files: replaced without --force


def test_write_splits_refuses_line_breaks(tmp_path):
    ok = Parallel(["d"], ["e"])
    bad = Splits(Parallel(["a\nb"], ["c"]), ok, ok, src_lang="s", tgt_lang="t")
    with pytest.raises(DataError, match="train.src sentence 1: contains a line break"):
        write_splits(bad, tmp_path / "out")
    assert not (tmp_path / "out").exists()
