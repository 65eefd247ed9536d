"""The binarized corpus store: streaming readers, a bounded tokenizer sample, memory-mapped ids that
match the tokenizer, refusal of a store built from other data, and `preprocess` + `train --data`."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from seq2attn.cli.main import app
from seq2attn.config import resolve_config
from seq2attn.errors import DataError
from seq2attn.modeldir.store import Source, build, open_store, sample_pairs
from seq2attn.text.textfiles import iter_lines, iter_parallel, read_lines

runner = CliRunner()
SMALL = ["--set", "tokenizer.kind=wordlevel", "--set", "model.emb_size=16", "--set", "model.hidden_size=16",
         "--set", "model.dec_hidden_size=16", "--set", "train.attention_image=false", "--set", "data.dev_size=20"]


@pytest.mark.parametrize("raw", [b"\xef\xbb\xbfa b\r\nc\n\nd", b"one\n", b"x\ty\n\xc3\xa9\n"])
def test_iter_lines_streams_what_read_lines_reads(tmp_path, raw):
    plain, packed = tmp_path / "f.txt", tmp_path / "f.txt.gz"
    plain.write_bytes(raw)
    packed.write_bytes(gzip.compress(raw))
    assert list(iter_lines(plain)) == list(iter_lines(packed)) == read_lines(plain)


def test_streaming_readers_name_file_and_line(tmp_path):
    bad, short, long = tmp_path / "bad", tmp_path / "short", tmp_path / "long"
    bad.write_bytes(b"ok\nok\n\xff\n")
    short.write_text("a\n")
    long.write_text("a\nb\n")
    with pytest.raises(DataError, match=f"{bad} line 3: not valid UTF-8"):
        list(iter_lines(bad))
    with pytest.raises(DataError, match=f"{short} has 1 lines but {long} has 2 lines"):
        list(iter_parallel(short, long))
    with pytest.raises(DataError, match=f"{long} has 2 lines but {short} has 1 lines"):
        list(iter_parallel(long, short))
    assert list(iter_parallel(long, long)) == [("a", "a"), ("b", "b")]


def test_tokenizer_sample_is_bounded_seeded_and_from_the_data():
    pairs = [(f"s{i}", f"t{i}") for i in range(1000)]
    src, tgt = sample_pairs(iter(pairs), k=50, seed=4)
    assert len(src) == 50 and all(f"t{s[1:]}" == t for s, t in zip(src, tgt))
    assert (src, tgt) == sample_pairs(iter(pairs), k=50, seed=4)
    assert src != sample_pairs(iter(pairs), k=50, seed=5)[0]
    assert sample_pairs(iter(pairs[:10]), k=50, seed=4)[0] == [s for s, _ in pairs[:10]]


def _cfg(*sets):
    return resolve_config(sets=["tokenizer.kind=wordlevel", *sets])


def test_store_holds_the_tokenizer_ids_memory_mapped(tmp_path, reverse_files):
    cfg = _cfg("tokenizer.train_lines=500")
    build(tmp_path / "s", cfg, train=Source.files(*reverse_files["train"]), dev=Source.files(*reverse_files["dev"]))
    store = open_store(tmp_path / "s")
    src, tgt = store.split("train")
    assert isinstance(src.ids, np.memmap) and src.ids.dtype == np.uint16 and src.offsets.dtype == np.int64
    lines = read_lines(reverse_files["train"][1])
    assert len(tgt) == len(lines) == store.manifest["splits"]["train"]["pairs"]
    expected = store.codec.encode(lines, side="tgt")
    assert [tgt[i].tolist() for i in range(len(tgt))] == expected
    assert tgt.lengths().tolist() == [len(e) for e in expected]
    assert store.dev_text().tgt == read_lines(reverse_files["dev"][1])
    assert not list((tmp_path / "s").glob("*.raw")) and not list(tmp_path.glob(".*.tmp"))


def test_a_store_is_refused_when_inputs_or_tokenizer_differ(tmp_path, reverse_files):
    (src, tgt), dev = reverse_files["train"], reverse_files["dev"]
    build(tmp_path / "s", _cfg(), train=Source.files(src, tgt), dev=Source.files(*dev))
    other = tmp_path / "other.tgt"
    other.write_text(tgt.read_text().replace("a", "b", 1))
    with pytest.raises(DataError, match="differs from"):
        open_store(tmp_path / "s").check_inputs("train", Source.files(src, other))
    with pytest.raises(DataError, match="already holds a corpus store"):
        build(tmp_path / "s", _cfg(), train=Source.files(src, tgt), dev=Source.files(*dev))
    tok = tmp_path / "s" / "tokenizer.json"
    tok.write_text(tok.read_text().replace('"<unk>"', '"<UNK>"', 1))
    with pytest.raises(DataError, match="tokenizer differs"):
        open_store(tmp_path / "s")


def test_preprocess_then_train_with_data_dir(tmp_path, reverse_files):
    (src, tgt), (dsrc, dtgt) = reverse_files["train"], reverse_files["dev"]
    files = ["--train", str(src), str(tgt), "--dev", str(dsrc), str(dtgt)]
    done = runner.invoke(app, ["preprocess", "--out", str(tmp_path / "s"), *files, "--set", "tokenizer.kind=wordlevel"])
    assert done.exit_code == 0, done.output
    assert "3,000 training and 200 dev pairs" in done.output
    model = tmp_path / "m"
    done = runner.invoke(app, ["train", "--out", str(model), "--data", str(tmp_path / "s"), *SMALL,
                               "--set", "train.max_steps=4", "--set", "train.validate_every=4"])
    assert done.exit_code == 0, done.output
    assert not (model / "data").exists()  # the given store is used, not copied
    cfg = json.loads((model / "manifest.json").read_text())
    assert cfg["weights"]["last"]["step"] == 4
    done = runner.invoke(app, ["translate", "-m", str(model)], input="a b c\n")
    assert done.exit_code == 0 and done.stdout.strip()

    other = tmp_path / "other.src"
    other.write_text(src.read_text() + "x y\n")
    other_tgt = tmp_path / "other.tgt"
    other_tgt.write_text(tgt.read_text() + "y x\n")
    done = runner.invoke(app, ["train", "--out", str(tmp_path / "m2"), "--data", str(tmp_path / "s"),
                               "--train", str(other), str(other_tgt), "--dev", str(dsrc), str(dtgt), *SMALL])
    assert done.exit_code == 1 and "differs from" in done.output and "Traceback" not in done.output
