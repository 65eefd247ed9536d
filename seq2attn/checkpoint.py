"""The only module that writes and reads a model directory.

A model directory is self-describing::

    manifest.json      format tag, version, sha256 of every weights file, training position
    config.yaml        the resolved configuration (the model rebuilds itself from it)
    tokenizer.json     (or src_tokenizer.json + tgt_tokenizer.json)
    model.safetensors  best weights by dev BLEU
    last.safetensors   the latest weights, for --resume
    averaged.safetensors  the average of the last N validation checkpoints (train.average_last)
    checkpoints/       those N checkpoints, step-NNNNNNNN.safetensors (listed in the manifest)
    trainer.pt         optimizer, schedule, RNG states, counters (plain tensors and numbers)
    metrics.jsonl      one JSON row per log / validation

Every file is written to a temporary name in the same directory and renamed into place, so a crash
or Ctrl-C never leaves a half-written file where a good one was. Loading never unpickles arbitrary
objects: weights come from safetensors and ``trainer.pt`` is read with ``weights_only=True``; a
weights file whose sha256 differs from the manifest is refused.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from safetensors import SafetensorError
from safetensors.torch import load_model, save_model
from torch import nn

from . import __version__
from .config import Config, config_from_dict, to_dict
from .errors import CheckpointError, ConfigError
from .models import build_model
from .tokenizer import TextCodec

FORMAT = "seq2attn-model"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
WEIGHTS = {"best": "model.safetensors", "last": "last.safetensors", "averaged": "averaged.safetensors"}
SNAPSHOTS = "checkpoints"


_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write(path: Path, write: Callable[[str], None]) -> None:
    """Call ``write(tmp_path)`` then rename the temp file onto ``path`` (same directory: atomic)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_manifest(directory: Path) -> dict[str, Any]:
    path = directory / MANIFEST
    if not directory.is_dir():
        raise CheckpointError(f"{directory}: no such model directory")
    if not path.is_file():
        raise CheckpointError(f"{directory}: not a seq2attn model directory (no {MANIFEST})")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise CheckpointError(f"{path}: corrupt manifest (not JSON)") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a seq2attn model manifest")
    if manifest.get("version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: format version {manifest.get('version')!r}; this seq2attn reads {FORMAT_VERSION}")
    return manifest


def _write_manifest(directory: Path, manifest: dict[str, Any]) -> None:
    atomic_write_text(directory / MANIFEST, json.dumps(manifest, indent=2) + "\n")


def save_setup(directory: Path, cfg: Config, codec: TextCodec) -> None:
    """Start a model directory: config, tokenizer and an empty manifest."""
    directory.mkdir(parents=True, exist_ok=True)
    atomic_write_text(directory / "config.yaml", yaml.safe_dump(to_dict(cfg), sort_keys=False))
    codec.save(directory)
    _write_manifest(directory, {"format": FORMAT, "version": FORMAT_VERSION, "seq2attn": __version__, "weights": {}})


def _write_weights(directory: Path, name: str, model: nn.Module, info: dict[str, Any]) -> dict[str, Any]:
    atomic_write(directory / name, lambda tmp: save_model(model, tmp, metadata={"format": FORMAT}))
    return {"file": name, "sha256": sha256(directory / name), **info}


def save_weights(directory: Path, model: nn.Module, *, which: str, info: dict[str, Any]) -> None:
    """Write ``best``, ``last`` or ``averaged`` weights and record their sha256 and ``info`` (step, scores)."""
    manifest = read_manifest(directory)
    manifest["weights"][which] = _write_weights(directory, WEIGHTS[which], model, info)
    _write_manifest(directory, manifest)


def save_snapshot(directory: Path, model: nn.Module, *, info: dict[str, Any], keep: int) -> None:
    """Add ``checkpoints/step-N.safetensors`` to the manifest and forget all but the newest ``keep``;
    the files of forgotten snapshots are deleted only after the manifest no longer lists them."""
    manifest = read_manifest(directory)
    entry = _write_weights(directory, f"{SNAPSHOTS}/step-{info['step']:08d}.safetensors", model, info)
    snapshots = [e for e in manifest.get("snapshots", []) if e["file"] != entry["file"]] + [entry]
    manifest["snapshots"], dropped = snapshots[-keep:], snapshots[:-keep]
    _write_manifest(directory, manifest)
    for e in dropped:
        (directory / e["file"]).unlink(missing_ok=True)


def snapshots(directory: Path) -> list[dict[str, Any]]:
    """Manifest entries of the kept validation checkpoints, oldest first."""
    return list(read_manifest(directory).get("snapshots", []))


def save_trainer_state(directory: Path, state: dict[str, Any]) -> None:
    atomic_write(directory / "trainer.pt", lambda tmp: torch.save(state, tmp))


def drop_rows_after(path: Path, step: int) -> None:
    """Remove log rows past ``step`` from a ``metrics.jsonl``: a run resumed from a checkpoint at
    ``step`` logs those steps again."""
    if not path.is_file():
        return
    lines = path.read_text(encoding="utf-8").splitlines()
    kept = [line for line in lines if line.strip() and _row_step(line) <= step]
    if len(kept) != len(lines):
        atomic_write_text(path, "".join(line + "\n" for line in kept))


def _row_step(line: str) -> float:
    try:
        return float(json.loads(line).get("step", 0))
    except (json.JSONDecodeError, AttributeError, TypeError, ValueError):
        return math.inf  # a torn or foreign line: drop it


def load_trainer_state(directory: Path) -> dict[str, Any]:
    path = directory / "trainer.pt"
    if not path.is_file():
        raise CheckpointError(f"{directory}: nothing to resume (no trainer.pt)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure means a file we will not trust
        raise CheckpointError(f"{path}: unreadable or unsafe training state ({type(e).__name__})") from None


def load_config(directory: Path) -> Config:
    path = directory / "config.yaml"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"{directory}: no config.yaml") from None
    except (UnicodeDecodeError, yaml.YAMLError):
        raise CheckpointError(f"{path}: corrupt config") from None
    try:
        return config_from_dict(data or {}, str(path))
    except ConfigError as e:
        raise CheckpointError(f"{path}: {e}") from None


def load_weights(directory: Path, model: nn.Module, *, which: str, device: str | torch.device = "cpu") -> dict[str, Any]:
    """Load ``best``, ``last`` or ``averaged`` weights into ``model`` after checking their sha256;
    returns their manifest entry (step, scores)."""
    entry = read_manifest(directory)["weights"].get(which)
    if entry is None:
        hint = ("; write it with: seq2attn average -m DIR --last N" if which == "averaged"
                else " yet (training saved no checkpoint)")
        raise CheckpointError(f"{directory}: holds no {WEIGHTS[which]}{hint}")
    return load_entry(directory, entry, model, device=device)


def load_entry(directory: Path, entry: dict[str, Any], model: nn.Module, *,
               device: str | torch.device = "cpu") -> dict[str, Any]:
    """Load the weights file a manifest ``entry`` names into ``model``, after checking its sha256."""
    path = directory / entry["file"]
    if not path.is_file():
        raise CheckpointError(f"{path}: weights file missing")
    if sha256(path) != entry["sha256"]:
        raise CheckpointError(f"{path}: sha256 does not match {MANIFEST}; the weights were modified or damaged")
    try:
        load_model(model, str(path), strict=True, device=str(device))
    except (SafetensorError, RuntimeError, ValueError, OSError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{path}: weights do not fit this model ({first[:160]})") from None
    return entry


@dataclass
class Loaded:
    cfg: Config
    codec: TextCodec
    model: nn.Module
    info: dict[str, Any]  # manifest entry of the loaded weights: step, scores
    which: str = "best"  # best, last or averaged


def choose_weights(manifest: dict[str, Any]) -> str:
    """``averaged`` when its dev BLEU beats the best checkpoint's, else ``best``."""
    weights = manifest["weights"]
    best, averaged = weights.get("best", {}).get("dev_bleu"), weights.get("averaged", {}).get("dev_bleu")
    return "averaged" if averaged is not None and (best is None or averaged > best) else "best"


def build_empty(directory: Path) -> tuple[Config, TextCodec, nn.Module]:
    """The config, tokenizer and an untrained model of a directory (weights not loaded)."""
    cfg = load_config(directory)
    codec = TextCodec.load(directory)
    model = build_model(cfg.model, src_vocab=codec.vocab_size("src"), tgt_vocab=codec.vocab_size("tgt"),
                        joint=codec.joint)
    return cfg, codec, model


def load(directory: str | Path, *, which: str = "auto", device: str | torch.device = "cpu") -> Loaded:
    """Rebuild the model of a directory from its config and load verified weights into it;
    ``which``: best, last, averaged, or auto (the better of best and averaged by dev BLEU)."""
    directory = Path(directory)
    manifest = read_manifest(directory)  # a foreign or half-made directory fails here, with the reason
    if which == "auto":
        which = choose_weights(manifest)
    cfg, codec, model = build_empty(directory)
    entry = load_weights(directory, model, which=which, device=device)
    model.to(device).eval()
    return Loaded(cfg, codec, model, entry, which)
