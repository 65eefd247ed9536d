"""One atomic writer for the package, and a checkpoint written as one unit."""

from __future__ import annotations

import json
import os
import shutil
import stat

import pytest

from seq2attn.errors import CheckpointError
from seq2attn.fsutil import atomic_write, atomic_write_lines, read_limited, sha256
from seq2attn.modeldir import checkpoint
from seq2attn.modeldir.checkpoint import load_trainer_state, read_manifest, save_checkpoint


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_atomic_write_honours_the_umask_like_open(tmp_path, umask):
    old = os.umask(umask)
    try:
        with open(tmp_path / "plain", "w"):
            pass
        expected = mode(tmp_path / "plain")
    finally:
        os.umask(old)
    from seq2attn import fsutil

    saved, fsutil._UMASK = fsutil._UMASK, umask
    try:
        atomic_write_lines(tmp_path / "a.txt", ["x", "y"])
    finally:
        fsutil._UMASK = saved
    assert mode(tmp_path / "a.txt") == expected
    assert (tmp_path / "a.txt").read_text() == "x\ny\n"


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("old\n")

    def broken(tmp: str) -> None:
        with open(tmp, "w") as f:
            f.write("half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        atomic_write(path, broken)
    assert path.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["out.txt"]


def test_read_limited_refuses_devices_directories_and_big_files(tmp_path):
    (tmp_path / "big").write_bytes(b"x" * 11)
    with pytest.raises(OSError, match="larger than"):
        read_limited(tmp_path / "big", 10)
    with pytest.raises(OSError, match="regular"):
        read_limited("/dev/zero", 10)
    with pytest.raises(IsADirectoryError):
        read_limited(tmp_path, 10)
    assert read_limited(tmp_path / "big", 11) == b"x" * 11


def test_every_file_of_a_model_directory_has_the_same_permissions(tiny_model):
    modes = {p.name: mode(p) for p in tiny_model.iterdir() if p.is_file()}
    assert len(set(modes.values())) == 1, modes


def test_a_failed_checkpoint_leaves_the_previous_one(tiny_model, tmp_path, monkeypatch):
    model_dir = shutil.copytree(tiny_model, tmp_path / "m")
    loaded = checkpoint.load(model_dir, which="last")
    before = {p.name: sha256(p) for p in model_dir.iterdir() if p.is_file()}

    def full_disk(obj, f):
        raise RuntimeError("PytorchStreamWriter failed writing file data/0: file write failed")

    monkeypatch.setattr(checkpoint.torch, "save", full_disk)
    with pytest.raises(CheckpointError, match="previous checkpoint is intact"):
        save_checkpoint(model_dir, loaded.model, which=("best", "last"), info={"step": 999, "epoch": 0,
                                                                              "dev_bleu": 0.0},
                        trainer_state={"counters": {}})
    assert {p.name: sha256(p) for p in model_dir.iterdir() if p.is_file()} == before


def test_resume_refuses_a_trainer_state_that_is_not_the_manifests(tiny_model, tmp_path):
    model_dir = shutil.copytree(tiny_model, tmp_path / "m")
    assert load_trainer_state(model_dir)["counters"]["step"] == read_manifest(model_dir)["trainer"]["step"]
    (model_dir / "trainer.pt").write_bytes((model_dir / "trainer.pt").read_bytes() + b"\0")
    with pytest.raises(CheckpointError, match="trainer.pt: sha256 does not match"):
        load_trainer_state(model_dir)
    manifest = json.loads((model_dir / "manifest.json").read_text())
    manifest["trainer"]["step"] += 20
    (model_dir / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match="inconsistent"):
        load_trainer_state(model_dir)


@pytest.mark.parametrize("edit", [
    lambda m: m.pop("weights"),
    lambda m: m["weights"]["best"].update(file="/etc/passwd"),
    lambda m: m["weights"]["best"].update(file="../model.safetensors"),
    lambda m: m["weights"]["best"].update(step="60"),
    lambda m: m["weights"].update(evil={"file": "x"}),
    lambda m: m.update(trainer={"file": "trainer.pt"}),
])
def test_a_manifest_names_only_known_files_inside_the_directory(tiny_model, tmp_path, edit):
    model_dir = shutil.copytree(tiny_model, tmp_path / "m")
    manifest = json.loads((model_dir / "manifest.json").read_text())
    edit(manifest)
    (model_dir / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match="manifest"):
        checkpoint.load(model_dir)


def test_corpora_prepare_writes_files_like_open_does(tmp_path):
    from seq2attn.text.corpora import load_corpus
    from seq2attn.text.textfiles import write_splits

    with open(tmp_path / "plain", "w"):
        pass
    paths = write_splits(load_corpus("copy", src_lang=None, tgt_lang=None, data_dir=None, seed=1), tmp_path / "c")
    assert {mode(p) for p in paths} == {mode(tmp_path / "plain")}


def test_json_lines_are_strict_json_even_for_nan_and_infinity():
    import json
    import math

    from seq2attn.fsutil import json_line

    line = json_line({"score": math.nan, "nbest": [{"score": -math.inf}], "ok": 1.5}, ensure_ascii=False)
    assert json.loads(line, parse_constant=lambda c: pytest.fail(c)) == {"score": None, "nbest": [{"score": None}],
                                                                        "ok": 1.5}
