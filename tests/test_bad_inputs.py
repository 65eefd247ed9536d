"""Bad input, as a hostile user would give it, as one table: every row runs one command on inputs a
builder made and expects an exit code, one line on stderr holding a fragment, no traceback, and
every file under the test directory unchanged (sha256), nothing created, nothing deleted."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from seq2attn.cli.main import app
from seq2attn.fsutil import sha256
from seq2attn.run.rundir import RunLock

runner = CliRunner()
BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
    for i in range(9))


@dataclass
class Case:
    name: str
    build: Callable[[Path, Path, dict], list]  # (tmp dir, model copy, corpus files) -> CLI arguments
    code: int
    fragment: str
    stdin: str | None = None


def tree(root: Path) -> dict[str, str]:
    """Every file under ``root`` and its sha256 (links as their target)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            path = Path(dirpath, name)
            rel = str(path.relative_to(root))
            if path.is_symlink():
                out[rel] = f"-> {os.readlink(path)}"
            else:
                out[rel] = sha256(path) if path.is_file() else f"special {os.lstat(path).st_mode:o}"
    return out


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def training(tmp, files, *extra, out=None) -> list:
    (src, tgt), (dsrc, dtgt) = files["train"], files["dev"]
    return ["train", "--out", out or tmp / "new", "--train", src, tgt, "--dev", dsrc, dtgt,
            "--set", "tokenizer.kind=wordlevel", *extra]


def edit_manifest(model: Path, change: Callable[[dict], None]) -> None:
    manifest = json.loads((model / "manifest.json").read_text())
    change(manifest)
    (model / "manifest.json").write_text(json.dumps(manifest))


def edit_trainer(model: Path, change: Callable[[dict], None]) -> None:
    state = torch.load(model / "trainer.pt", weights_only=True)
    change(state)
    torch.save(state, model / "trainer.pt")
    edit_manifest(model, lambda m: m["trainer"].update(sha256=sha256(model / "trainer.pt")))


def shrink_moments(state: dict) -> None:
    """The optimizer state of a model with a smaller first parameter."""
    for moments in state["optimizer"]["state"].values():
        for key in ("exp_avg", "exp_avg_sq"):
            moments[key] = moments[key][..., :1].clone()
        break


def user_dir(tmp: Path) -> Path:
    d = tmp / "mine"
    write(d / "config.yaml", "my own notes\n")
    write(d / "tokenizer.json", "{}\n")
    write(d / "src_tokenizer.json", "{}\n")
    write(d / "metrics.jsonl", "{\"mine\": 1}\n")
    return d


def locked(tmp: Path) -> Path:
    d = tmp / "busy"
    d.mkdir()
    locked.held = RunLock(d)  # released by the test
    return d


def resume(model: Path, *extra) -> list:
    return ["train", "--out", model, "--resume", *extra]


def translating(model: Path, files: dict) -> list:
    return ["translate", "-m", model, "-i", files["dev"][0]]


def replace_by(path: Path, make: Callable[[Path], None]) -> None:
    path.unlink()
    make(path)


def then(_effect, args: list) -> list:
    """The arguments, once the builder's side effect (evaluated first, as an argument) is done."""
    return args


class FdLock:
    """The directory lock held through another open file, as another process would hold it."""

    def __init__(self, directory: Path):
        import fcntl

        self.fd = os.open(directory / ".seq2attn.lock", os.O_RDWR | os.O_CREAT)
        fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def release(self) -> None:
        os.close(self.fd)


def held_elsewhere(model: Path) -> Path:
    locked.held = FdLock(model)  # released by the test
    return model


def outside(tmp: Path) -> Path:
    """A user's directory outside the model directory, with a file of theirs."""
    write(tmp / "outside" / "notes.txt", "mine\n")
    return tmp / "outside"


def link(path: Path, target: Path) -> None:
    """Replace ``path`` (a file or a directory) by a symbolic link to ``target``."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
    path.symlink_to(target)


def fifo(path: Path) -> None:
    path.unlink()
    os.mkfifo(path)


def store_of(tmp: Path, model: Path) -> Path:
    """A copy of the corpus store training built inside the model directory."""
    return Path(shutil.copytree(model / "data", tmp / "store"))


def edit_store(store: Path, change: Callable[[dict], None]) -> Path:
    manifest = json.loads((store / "store.json").read_text())
    change(manifest)
    (store / "store.json").write_text(json.dumps(manifest))
    return store


def with_array(store: Path, name: str, make: Callable[[np.ndarray], np.ndarray | bytes]) -> Path:
    value = make(np.load(store / name))
    if isinstance(value, bytes):
        (store / name).write_bytes(value)
    else:
        np.save(store / name, value, allow_pickle=True)
    return store


def from_store(tmp: Path, store: Path, *extra) -> list:
    return ["train", "--data", store, "--out", tmp / "new", "--set", "train.max_steps=1", *extra]


def with_weights(model: Path, change: Callable[[dict], None]) -> None:
    """Rewrite model.safetensors with ``change`` applied to its tensors, its sha256 updated."""
    from safetensors.torch import load_file, save_file

    tensors = load_file(model / "model.safetensors")
    change(tensors)
    save_file(tensors, model / "model.safetensors", metadata={"format": "seq2attn-model"})
    edit_manifest(model, lambda x: x["weights"]["best"].update(sha256=sha256(model / "model.safetensors")))


def nan_first(tensors: dict) -> None:
    first = next(k for k, v in tensors.items() if v.is_floating_point())
    tensors[first] = tensors[first].clone()
    tensors[first].view(-1)[0] = float("nan")


def permuted_vocab(model: Path) -> None:
    tok = json.loads((model / "tokenizer.json").read_text())
    vocab = tok["model"]["vocab"]
    words = [w for w, i in sorted(vocab.items(), key=lambda x: x[1]) if i > 3]
    ids = sorted(vocab[w] for w in words)
    vocab.update(zip(words, ids[1:] + ids[:1]))
    (model / "tokenizer.json").write_text(json.dumps(tok))


CASES = [
    # 1, 8: a directory that is not ours is never written into; a file is not a directory
    Case("train into a user's directory", lambda t, m, f: training(t, f, out=user_dir(t)), 1,
         "not a seq2attn model directory"),
    Case("train --out a file", lambda t, m, f: training(t, f, out=write(t / "afile", "data\n")), 1,
         "not a directory"),
    Case("train --out a model", lambda t, m, f: training(t, f, out=m), 1, "already holds a model"),
    Case("train with a foreign manifest.json", lambda t, m, f: training(
        t, f, out=write(t / "other" / "manifest.json", '{"format": "else"}').parent), 1, "not a seq2attn model"),
    # 2: one run per directory
    Case("train while another run holds the lock", lambda t, m, f: training(t, f, out=locked(t)), 1,
         "another seq2attn train"),
    # 5, 11: checked before anything is written
    Case("data.max_length=1", lambda t, m, f: training(t, f, "--set", "data.max_length=1"), 1,
         "data.max_length=1"),
    Case("train.lr=nan", lambda t, m, f: training(t, f, "--set", "train.lr=nan"), 1, "train.lr"),
    Case("train.lr=inf", lambda t, m, f: training(t, f, "--set", "train.lr=inf"), 1, "finite"),
    Case("train.clip_norm=nan", lambda t, m, f: training(t, f, "--set", "train.clip_norm=nan"), 1, "finite"),
    Case("train.max_minutes=nan", lambda t, m, f: training(t, f, "--set", "train.max_minutes=.nan"), 1, "finite"),
    Case("decode.alpha=nan", lambda t, m, f: training(t, f, "--set", "decode.alpha=nan"), 1, "decode.alpha"),
    Case("train.weight_decay=-1", lambda t, m, f: training(t, f, "--set", "train.weight_decay=-1"), 1,
         "train.weight_decay"),
    Case("tokenizer.vocab_size=1e20", lambda t, m, f: training(t, f, "--set", "tokenizer.vocab_size=1e20"), 1,
         "tokenizer.vocab_size"),
    Case("tokenizer.vocab_size=10**20", lambda t, m, f: training(
        t, f, "--set", "tokenizer.vocab_size=100000000000000000000"), 1, "out of range"),
    Case("--seed 1e30 in a config", lambda t, m, f: training(
        t, f, "--config", write(t / "c.yaml", "train: {seed: 1e30}\n")), 1, "train.seed"),
    # 7, 8: hostile config files
    Case("--config alias bomb", lambda t, m, f: training(t, f, "--config", write(t / "bomb.yaml", BOMB)), 1,
         "aliases"),
    Case("--config 2 MB", lambda t, m, f: training(
        t, f, "--config", write(t / "big.yaml", "train:\n" + "  # pad\n" * 300_000)), 1, "larger than"),
    Case("--config a directory", lambda t, m, f: training(t, f, "--config", t), 1, "cannot read"),
    Case("--config /dev/zero", lambda t, m, f: training(t, f, "--config", "/dev/zero"), 1, "not a regular file"),
    Case("--config with a huge value", lambda t, m, f: training(
        t, f, "--config", write(t / "long.yaml", "model: {attention: " + "x" * 500_000 + "}\n")), 1,
         "model.attention"),
    Case("model config.yaml alias bomb", lambda t, m, f: ["translate", "-m", m, "-i", write(m / "config.yaml", BOMB)],
         1, "config.yaml"),
    Case("model config.yaml a directory", lambda t, m, f: then(
        replace_by(m / "config.yaml", lambda p: p.mkdir()), translating(m, f)), 1, "config.yaml"),
    Case("model config.yaml -> /dev/zero", lambda t, m, f: then(
        replace_by(m / "config.yaml", lambda p: p.symlink_to("/dev/zero")), translating(m, f)), 1,
         "config.yaml: a symbolic link"),
    # 9: the manifest names known files inside the directory, nothing else
    Case("manifest without weights", lambda t, m, f: then(
        edit_manifest(m, lambda x: x.pop("weights")), translating(m, f)), 1, "weights"),
    Case("manifest pointing outside", lambda t, m, f: then(edit_manifest(
        m, lambda x: x["weights"]["best"].update(file=str(t / "elsewhere.safetensors"))), translating(m, f)),
         1, "corrupt manifest entry"),
    Case("manifest step not an integer", lambda t, m, f: then(edit_manifest(
        m, lambda x: x["weights"]["best"].update(step="60")), ["info", "-m", m]), 1, "integer step"),
    Case("manifest.json is /dev/zero", lambda t, m, f: then(
        replace_by(m / "manifest.json", lambda p: p.symlink_to("/dev/zero")), ["info", "-m", m]), 1,
         "manifest.json: a symbolic link"),
    # 6, 10: the checkpoint is one unit; a trainer.pt that does not fit is refused before training
    Case("--resume with a tampered trainer.pt", lambda t, m, f: then(write(
        m / "trainer.pt", (m / "trainer.pt").read_bytes() + b"\0"), resume(m)), 1, "sha256"),
    Case("--resume, manifest steps disagree", lambda t, m, f: then(edit_manifest(
        m, lambda x: x["trainer"].update(step=x["trainer"]["step"] + 20)), resume(m)), 1, "inconsistent"),
    Case("--resume, trainer.pt of another model", lambda t, m, f: then(
        edit_trainer(m, shrink_moments), resume(m)), 1, "does not fit this model"),
    Case("--resume, non-integer step", lambda t, m, f: then(
        edit_trainer(m, lambda s: s["counters"].update(step=1.5)), resume(m)), 1, "not an integer"),
    Case("--resume a directory that is not a model", lambda t, m, f: resume(user_dir(t)), 1, "no model to resume"),
    # 13: decode settings validated once for every command; messages name the files
    Case("evaluate --batch-tokens 0", lambda t, m, f: [
        "evaluate", "-m", m, "--src", f["dev"][0], "--ref", f["dev"][1], "--batch-tokens", "0"], 1,
         "decode.batch_tokens"),
    Case("evaluate --beam 0", lambda t, m, f: [
        "evaluate", "-m", m, "--src", f["dev"][0], "--ref", f["dev"][1], "--beam", "0"], 1, "decode.beam_size"),
    Case("align --beam 0", lambda t, m, f: ["align", "-m", m, "a b", "--beam", "0"], 1, "decode.beam_size"),
    Case("translate --alpha nan", lambda t, m, f: ["translate", "-m", m, "--alpha", "nan"], 1, "decode.alpha",
         stdin="a b\n"),
    Case("align --src/--tgt of different lengths", lambda t, m, f: [
        "align", "-m", m, "--src", f["dev"][0], "--tgt", write(t / "short.tgt", "a b\n"), "--format", "pharaoh"],
         1, "short.tgt"),
    Case("score --metrics ,", lambda t, m, f: ["score", f["dev"][1], f["dev"][1], "--metrics", ","], 1, "--metrics"),
    # 16: any failed read or write is one line
    Case("translate -i a directory", lambda t, m, f: ["translate", "-m", m, "-i", t], 1, "directory"),
    Case("translate -o below a file", lambda t, m, f: then(write(t / "no", "a file\n"), [
        "translate", "-m", m, "-i", f["dev"][0], "-o", t / "no" / "out"]), 1, "cannot write"),
    Case("score a missing reference", lambda t, m, f: ["score", f["dev"][1], t / "missing.ref"], 1,
         "missing.ref"),
    # issue 24, 2: a model directory is self-contained; no link is followed, nothing outside written
    Case("--resume with checkpoints/ a link outside", lambda t, m, f: then(
        link(m / "checkpoints", outside(t)), resume(m)), 1, "checkpoints: a symbolic link"),
    Case("average with metrics.jsonl a link to a user's file", lambda t, m, f: then(
        link(m / "metrics.jsonl", outside(t) / "notes.txt"), ["average", "-m", m, "--last", "1"]), 1,
         "metrics.jsonl: a symbolic link"),
    Case("tune-alpha with metrics.jsonl a link to a user's file", lambda t, m, f: then(
        link(m / "metrics.jsonl", outside(t) / "notes.txt"), ["tune-alpha", "-m", m, "--alphas", "0"]), 1,
         "metrics.jsonl: a symbolic link"),
    Case("--resume with the lock file a link", lambda t, m, f: then(
        link(m / ".seq2attn.lock", t / "created-outside"), resume(m)), 1, ".seq2attn.lock: a symbolic link"),
    Case("model.safetensors a link to a copy", lambda t, m, f: then(link(m / "model.safetensors", Path(
        shutil.copy(m / "model.safetensors", t / "w.safetensors"))), translating(m, f)), 1,
         "model.safetensors: a symbolic link"),
    Case("tokenizer.json a link to a copy", lambda t, m, f: then(link(m / "tokenizer.json", Path(
        shutil.copy(m / "tokenizer.json", t / "tok.json"))), translating(m, f)), 1, "tokenizer.json: a symbolic link"),
    Case("data/ a link to a copy", lambda t, m, f: then(link(m / "data", Path(
        shutil.copytree(m / "data", t / "elsewhere"))), ["tune-alpha", "-m", m, "--alphas", "0"]), 1,
         "data: a symbolic link"),
    Case("model.safetensors a FIFO", lambda t, m, f: then(fifo(m / "model.safetensors"), translating(m, f)), 1,
         "not a regular file"),
    Case("average while another process holds the lock", lambda t, m, f: [
        "average", "-m", held_elsewhere(m), "--last", "1"], 1, "another seq2attn"),
    Case("tune-alpha while another process holds the lock", lambda t, m, f: [
        "tune-alpha", "-m", held_elsewhere(m), "--alphas", "0"], 1, "another seq2attn"),
    # 3: every file loaded is checked; weights that cannot translate are refused
    Case("tokenizer.json with a permuted vocabulary", lambda t, m, f: then(permuted_vocab(m), translating(m, f)), 1,
         "tokenizer.json: sha256 does not match"),
    Case("manifest without the tokenizer's sha256", lambda t, m, f: then(
        edit_manifest(m, lambda x: x.pop("tokenizer")), translating(m, f)), 1, "no sha256 for the tokenizer"),
    Case("manifest naming another tokenizer file", lambda t, m, f: then(edit_manifest(
        m, lambda x: x.update(tokenizer={"../tokenizer.json": "0" * 64})), translating(m, f)), 1,
         "corrupt manifest entry 'tokenizer'"),
    Case("weights holding a NaN", lambda t, m, f: then(with_weights(m, nan_first), translating(m, f)), 1,
         "NaN or infinite"),
    # 4: a corpus store is checked when it is opened
    Case("store.json without splits", lambda t, m, f: from_store(t, edit_store(
        store_of(t, m), lambda x: x.pop("splits"))), 1, "corrupt store manifest"),
    Case("store.json splits a string", lambda t, m, f: from_store(t, edit_store(
        store_of(t, m), lambda x: x.update(splits="all"))), 1, "corrupt store manifest"),
    Case("store: truncated .npy", lambda t, m, f: from_store(t, with_array(
        store_of(t, m), "train.src.npy", lambda a: (t / "store" / "train.src.npy").read_bytes()[:200])), 1,
         "train.src.npy"),
    Case("store: garbage .npy", lambda t, m, f: from_store(t, with_array(
        store_of(t, m), "train.tgt.npy", lambda a: b"garbage" * 100)), 1, "train.tgt.npy"),
    Case("store: 0-byte .npy", lambda t, m, f: from_store(t, with_array(
        store_of(t, m), "train.tgt.npy", lambda a: b"")), 1, "train.tgt.npy"),
    Case("store: pickled .npy", lambda t, m, f: from_store(t, with_array(
        store_of(t, m), "train.src.npy", lambda a: np.array([{"x": 1}], dtype=object))), 1, "train.src.npy"),
    Case("store: ids past the vocabulary", lambda t, m, f: from_store(t, with_array(
        store_of(t, m), "train.src.npy", lambda a: np.full_like(a, 60000))), 1, "outside its tokenizer's vocabulary"),
    Case("store: offsets of 1e12", lambda t, m, f: from_store(t, with_array(
        store_of(t, m), "train.src.idx.npy", lambda a: np.where(np.arange(len(a)) == 5, 10**12, a))), 1,
         "offsets"),
    Case("store: offsets of -5", lambda t, m, f: from_store(t, with_array(
        store_of(t, m), "train.tgt.idx.npy", lambda a: np.where(np.arange(len(a)) == 5, -5, a))), 1, "offsets"),
    Case("store: empty train split", lambda t, m, f: from_store(t, edit_store(
        store_of(t, m), lambda x: x["splits"]["train"].update(pairs=0, src_tokens=0, tgt_tokens=0))), 1,
         "train split is empty"),
    Case("store: an unknown tokenizer key", lambda t, m, f: from_store(t, edit_store(
        store_of(t, m), lambda x: x["tokenizer"]["config"].update(evil=1))), 1, "unknown option tokenizer.evil"),
    Case("store: vocab_size abc", lambda t, m, f: from_store(t, edit_store(
        store_of(t, m), lambda x: x["tokenizer"]["config"].update(vocab_size="abc"))), 1, "tokenizer.vocab_size"),
    Case("store: a link inside", lambda t, m, f: from_store(t, then(
        link(t / "store" / "dev.src.txt", outside(t) / "notes.txt") if store_of(t, m) else None, t / "store")),
         1, "dev.src.txt: a symbolic link"),
    Case("--data with another tokenizer config", lambda t, m, f: from_store(
        t, store_of(t, m), "--set", "tokenizer.vocab_size=123"), 1, "tokenizer.vocab_size=8000 there, 123 here"),
    # 5: sizes the machine cannot hold are refused with the estimate, before anything is built
    Case("model.hidden_size=2147483647", lambda t, m, f: training(t, f, "--set", "model.hidden_size=2147483647"),
         1, "GiB to train"),
    Case("model.enc_layers=100000", lambda t, m, f: training(t, f, "--set", "model.enc_layers=100000"), 1,
         "model.enc_layers=100000; at most"),
    Case("train.threads=100000", lambda t, m, f: training(t, f, "--set", "train.threads=100000"), 1,
         "CPU"),
    Case("--seed -1", lambda t, m, f: training(t, f, "--seed", "-1"), 1, "train.seed=-1"),
    Case("model config.yaml hidden_size 2e9", lambda t, m, f: then(write(m / "config.yaml", (
        m / "config.yaml").read_text().replace("hidden_size: 32", "hidden_size: 2000000000", 1)),
        translating(m, f)), 1, "GiB to load"),
    # 6: nothing the user could not expect is overwritten
    Case("translate -o the model's weights", lambda t, m, f: translating(m, f) + ["-o", m / "model.safetensors"], 1,
         "a file of the model"),
    Case("evaluate -o the model's config", lambda t, m, f: [
        "evaluate", "-m", m, "--src", f["dev"][0], "--ref", f["dev"][1], "-o", m / "config.yaml"], 1,
         "a file of the model"),
    Case("corpora prepare over a user's train.src", lambda t, m, f: [
        "corpora", "prepare", "copy", "--out", write(t / "corpus" / "train.src", "mine\n").parent], 1,
         "not written by seq2attn; pass --force"),
    # 7: one-line fixes
    Case("--config with a key given twice", lambda t, m, f: training(
        t, f, "--config", write(t / "twice.yaml", "train:\n  lr: 0.1\n  lr: 0.2\n")), 1, "'lr' is given twice"),
    Case("align --gold with a link outside the sentence", lambda t, m, f: [
        "align", "-m", m, "--src", write(t / "a.src", "a b\n"), "--tgt", write(t / "a.tgt", "b a\n"),
        "--gold", write(t / "a.align", "0-1 99-99\n")], 1, "a.align line 1: link 99-99 is outside"),
    Case("--data-dir a file", lambda t, m, f: [
        "corpora", "prepare", "multi30k", "--src-lang", "de", "--tgt-lang", "en", "--out", t / "o",
        "--data-dir", write(t / "not-a-dir", "x\n")], 1, "not-a-dir: not a directory"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_one_line_and_changes_nothing(case, tmp_path, tiny_model, reverse_files):
    model = shutil.copytree(tiny_model, tmp_path / "model", symlinks=True)
    args = case.build(tmp_path, model, reverse_files)
    assert args, "the builder made no command"
    before = tree(tmp_path)
    try:
        result = runner.invoke(app, [str(a) for a in args], input=case.stdin)
    finally:
        if getattr(locked, "held", None):
            locked.held.release()
            locked.held = None
    assert result.exit_code == case.code, (result.exit_code, result.output)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    errors = [line for line in result.stderr.splitlines() if line.startswith("seq2attn: error:")]
    assert len(errors) == 1 and result.stderr.strip().endswith(errors[0]), result.stderr[:2000]
    assert case.fragment in errors[0] and len(errors[0]) < 400, errors[0]
    assert "Traceback" not in result.stderr
    assert tree(tmp_path) == before


def test_a_bom_on_stdin_is_stripped_like_in_a_file(tiny_model, tmp_path):
    text = "a b c\nd e\n"
    plain = runner.invoke(app, ["translate", "-m", str(tiny_model)], input=text)
    bom = runner.invoke(app, ["translate", "-m", str(tiny_model)], input="\ufeff" + text)
    path = write(tmp_path / "bom.src", "\ufeff" + text)
    from_file = runner.invoke(app, ["translate", "-m", str(tiny_model), "-i", str(path)])
    assert plain.exit_code == bom.exit_code == from_file.exit_code == 0
    assert bom.stdout == plain.stdout == from_file.stdout


def test_any_oserror_is_one_line_and_debug_shows_its_traceback(tmp_path, monkeypatch):
    import seq2attn.text.textfiles

    def failing_disk(path):
        raise OSError(5, "Input/output error", str(path))

    monkeypatch.setattr(seq2attn.text.textfiles, "read_lines", failing_disk)
    hyp = write(tmp_path / "h", "a\n")
    result = runner.invoke(app, ["score", str(hyp), str(hyp)])
    assert result.exit_code == 1 and result.stderr == f"seq2attn: error: {hyp}: Input/output error\n"
    monkeypatch.setenv("SEQ2ATTN_DEBUG", "1")
    result = runner.invoke(app, ["score", str(hyp), str(hyp)])
    assert isinstance(result.exception, OSError)


def test_a_nan_loss_stops_training_and_never_becomes_best(tmp_path, reverse_files, monkeypatch):
    from seq2attn.config import resolve_config
    from seq2attn.run.train import Diverged, Trainer, train

    real = Trainer.train_step

    def diverging(self, batches, total_tokens):
        loss = real(self, batches, total_tokens)
        return loss * float("nan") if self.state.step >= 2 else loss  # the 3rd step's loss is nan

    monkeypatch.setattr(Trainer, "train_step", diverging)
    (src, tgt), (dsrc, dtgt) = reverse_files["train"], reverse_files["dev"]
    cfg = resolve_config(sets=["tokenizer.kind=wordlevel", "model.emb_size=16", "model.hidden_size=16",
                               "model.dec_hidden_size=16", "train.validate_every=2", "train.log_every=1",
                               "train.max_steps=6", "train.attention_image=false", "data.dev_size=20"],
                         flags={"data": {"train": [str(src), str(tgt)], "dev": [str(dsrc), str(dtgt)]}})
    with pytest.raises(Diverged, match="train loss is nan at step 3.*step 2\\) is kept"):
        train(cfg, tmp_path / "m")
    weights = json.loads((tmp_path / "m" / "manifest.json").read_text())["weights"]
    assert weights["best"]["step"] == weights["last"]["step"] == 2


def test_one_huge_input_is_cut_the_same_in_the_cli_and_the_api(tiny_model):
    """Issue 24, 1: a 60,000-token line is cut at the input limit (a warning, Translation.too_long),
    and the output and the attention kept stay under decode.max_output_tokens."""
    import seq2attn

    huge = " ".join(["a b c"] * 20_000)
    result = runner.invoke(app, ["translate", "-m", str(tiny_model), "--max-input-tokens", "50"],
                           input=huge + "\nb c\n")
    assert result.exit_code == 0 and len(result.stdout.splitlines()) == 2, result.output
    assert "1 source lines were longer than the input limit" in result.stderr
    model = seq2attn.load(tiny_model, device="cpu")
    cut, whole = model.translate([huge, "b c"], max_input_tokens=50, max_output_tokens=7, max_len_a=100)
    assert cut.too_long and not whole.too_long and len(cut.src_tokens) == 50
    assert cut.hyp == result.stdout.splitlines()[0] or len(cut.hyp_tokens) <= 7
    assert len(cut.hyp_tokens) <= 7 and cut.attention.shape[0] <= 7 and cut.attention.shape[1] == 50
    default = model.translate(huge)  # a GRU reads 1,024 pieces unless told otherwise
    assert default.too_long and len(default.src_tokens) == 1024


def test_an_oserror_without_a_file_name_is_not_blamed_on_stdout(tmp_path, monkeypatch):
    """Issue 24, 7: a full disk while writing a file named nowhere in the error said '<stdout>: ...'."""
    import seq2attn.text.textfiles

    def full_disk(path):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(seq2attn.text.textfiles, "read_lines", full_disk)
    hyp = write(tmp_path / "h", "a\n")
    result = runner.invoke(app, ["score", str(hyp), str(hyp)])
    assert result.exit_code == 1 and result.stderr == "seq2attn: error: No space left on device\n"


def test_a_run_removes_stale_temporary_files_of_its_own_names_only(tiny_model, tmp_path):
    """Issue 24, 7: each kill -9 left a .curve.png.*.tmp that no run removed."""
    from seq2attn.run.rundir import claim

    model = shutil.copytree(tiny_model, tmp_path / "model")
    stale, mine = write(model / ".curve.png.x1y2.tmp", b"half a picture"), write(model / ".curve.png.notes", "keep")
    claim(model, resume=True).release()
    assert not stale.exists() and mine.read_text() == "keep"
