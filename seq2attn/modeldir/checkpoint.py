"""The only module that writes and reads a model directory.

A model directory is self-describing::

    manifest.json      format tag, version, sha256 of every weights file, training position
    config.yaml        the resolved configuration (the model rebuilds itself from it)
    tokenizer.json     (or src_tokenizer.json + tgt_tokenizer.json)
    model.safetensors  best weights by dev BLEU
    last.safetensors   the latest weights, for --resume
    averaged.safetensors  the average of the last N validation checkpoints (train.average_last);
                       translate / align / evaluate load it when its dev BLEU beats the best's
    checkpoints/       those N checkpoints, step-NNNNNNNN.safetensors
    trainer.pt         optimizer, schedule, RNG states, counters (plain tensors and numbers)
    metrics.jsonl      one JSON row per log / validation

A checkpoint is one unit: its files are written under temporary names and flushed, then renamed into
place with ``manifest.json`` (every file's sha256 and the step) last, so a crash leaves the previous
checkpoint or the new one. Loading never unpickles arbitrary objects: weights come from safetensors
and ``trainer.pt`` is read with ``weights_only=True``; a file whose sha256 differs from the manifest
is refused, and the manifest may name only the files above, inside the directory.
"""

from __future__ import annotations

import copy
import json
import os
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from safetensors import SafetensorError
from safetensors.torch import load_model, save_model
from torch import nn

from seq2attn.config import Config, config_from_dict, safe_yaml, to_dict
from seq2attn.errors import CheckpointError, ConfigError, brief
from seq2attn.fsutil import (
    atomic_write_text,
    commit,
    read_limited,
    regular_sha256,
    sha256,
    staged_write,
)
from seq2attn.modeldir.store import STORE_DIR, check_store_entries
from seq2attn.nn.models import build_model, check_config
from seq2attn.text.tokenizer import JOINT_FILE, SIDE_FILES, TextCodec
from seq2attn.version import __version__

FORMAT = "seq2attn-model"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
WEIGHTS = {"best": "model.safetensors", "last": "last.safetensors", "averaged": "averaged.safetensors"}
TRAINER = "trainer.pt"
# every name a run writes; a fresh run starting over in a directory removes these and no others
OWN_FILES = (MANIFEST, "config.yaml", JOINT_FILE, *SIDE_FILES.values(), *WEIGHTS.values(), TRAINER, "metrics.jsonl")
SNAPSHOTS = "checkpoints"
_SNAPSHOT = re.compile(SNAPSHOTS + r"/step-[0-9]{8}\.safetensors")
SMALL_FILE = 1 << 20  # manifest.json and config.yaml: anything larger is not ours
_SHA256 = re.compile(r"[0-9a-f]{64}")
TOKENIZER_FILES = ({JOINT_FILE}, set(SIDE_FILES.values()))  # the two layouts the manifest may record


def check_contained(directory: Path) -> None:
    """Refuse, before anything in it is read or written, a model directory that is not
    self-contained: a symbolic link anywhere inside it, or an entry that is neither a regular file
    nor a directory (a FIFO, a socket, a device). ``checkpoints/`` and ``data/`` must be real
    directories holding regular files only; other directories are not ours and never read. The
    directory itself may be reached through a link (``-m runs/latest``)."""
    try:
        entries = list(os.scandir(directory))
    except OSError as e:
        raise CheckpointError(f"{directory}: cannot list the model directory ({brief(e)})") from None
    for entry in entries:
        kind = _kind(entry)
        if kind == "dir" and entry.name == STORE_DIR:
            check_store_entries(Path(entry.path), error=CheckpointError)
        elif kind == "dir" and entry.name == SNAPSHOTS:
            for inner in os.scandir(entry.path):
                if _kind(inner) != "file":
                    raise CheckpointError(_not_contained(Path(inner.path), _kind(inner)))
        elif kind not in ("file", "dir"):
            raise CheckpointError(_not_contained(Path(entry.path), kind))


def _kind(entry: os.DirEntry) -> str:
    mode = entry.stat(follow_symlinks=False).st_mode
    return ("link" if stat.S_ISLNK(mode) else "file" if stat.S_ISREG(mode) else "dir" if stat.S_ISDIR(mode)
            else "special file")


def _not_contained(path: Path, kind: str) -> str:
    what = "a symbolic link" if kind == "link" else f"a {kind}, not a regular file"
    return f"{path}: {what}; a model directory must hold its own regular files only (nothing was read or written)"


def read_manifest(directory: Path) -> dict[str, Any]:
    """The validated manifest: known file names only (never a path), sha256s, integer steps. The
    directory is checked to be self-contained first (:func:`check_contained`)."""
    path = directory / MANIFEST
    if not directory.is_dir():
        raise CheckpointError(f"{directory}: no such model directory")
    check_contained(directory)
    if not path.exists():
        raise CheckpointError(f"{directory}: not a seq2attn model directory (no {MANIFEST})")
    try:
        manifest = json.loads(read_limited(path, SMALL_FILE, follow=False).decode("utf-8"))
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read ({brief(e)})") from None
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise CheckpointError(f"{path}: corrupt manifest (not JSON)") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a seq2attn model manifest")
    if manifest.get("version") != FORMAT_VERSION:
        version = str(manifest.get("version"))[:20]
        raise CheckpointError(f"{path}: format version {version}; this seq2attn reads {FORMAT_VERSION}")
    weights = manifest.get("weights")
    if not isinstance(weights, dict):
        raise CheckpointError(f"{path}: corrupt manifest (no \"weights\" table)")
    for which, entry in weights.items():
        _check_entry(path, which, entry, WEIGHTS.get(which))
    if "trainer" in manifest:
        _check_entry(path, "trainer", manifest["trainer"], TRAINER)
    kept = manifest.setdefault("snapshots", [])
    if not isinstance(kept, list):
        raise CheckpointError(f"{path}: corrupt manifest (\"snapshots\" is not a list)")
    for entry in kept:
        name = entry.get("file") if isinstance(entry, dict) else None
        if not (isinstance(name, str) and _SNAPSHOT.fullmatch(name)):
            name = f"{SNAPSHOTS}/step-NNNNNNNN.safetensors"
        _check_entry(path, "snapshots", entry, name)
    tokenizer = manifest.get("tokenizer")
    if tokenizer is not None and not (isinstance(tokenizer, dict) and set(tokenizer) in TOKENIZER_FILES and all(
            isinstance(v, str) and _SHA256.fullmatch(v) for v in tokenizer.values())):
        raise CheckpointError(f"{path}: corrupt manifest entry 'tokenizer' (expected {JOINT_FILE} or "
                              f"{' and '.join(SIDE_FILES.values())} with their sha256)")
    return manifest


def _check_entry(path: Path, which: str, entry: Any, name: str | None) -> None:
    if name is None:
        raise CheckpointError(f"{path}: unknown weights {str(which)[:40]!r}; expected {', '.join(WEIGHTS)}")
    ok = (isinstance(entry, dict) and entry.get("file") == name and isinstance(entry.get("sha256"), str)
          and _SHA256.fullmatch(entry["sha256"]) is not None
          and isinstance(entry.get("step"), int) and not isinstance(entry.get("step"), bool))
    if not ok:
        raise CheckpointError(f"{path}: corrupt manifest entry {which!r} (expected file {name!r}, "
                              "its sha256 and an integer step)")


def verified(directory: Path, entry: dict[str, Any]) -> Path:
    """The path of a manifest entry's file, after checking it is a regular file with that sha256."""
    path = directory / entry["file"]
    try:
        digest = regular_sha256(path)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: file missing") from None
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read ({brief(e)})") from None
    if digest != entry["sha256"]:
        raise CheckpointError(f"{path}: sha256 does not match {MANIFEST}; the file was modified or damaged")
    return path


def _manifest_text(manifest: dict[str, Any]) -> str:
    return json.dumps(manifest, indent=2) + "\n"


def save_setup(directory: Path, cfg: Config, codec: TextCodec) -> None:
    """Start a model directory: a manifest without weights first (it marks the directory as ours, so
    a run that dies before its first checkpoint may be restarted), then config and tokenizer, then
    the manifest again with the tokenizer's sha256 (checked whenever it is loaded)."""
    try:
        manifest = {"format": FORMAT, "version": FORMAT_VERSION, "seq2attn": __version__, "weights": {}}
        atomic_write_text(directory / MANIFEST, _manifest_text(manifest))
        save_config(directory, cfg)
        codec.save(directory)
        manifest["tokenizer"] = {name: sha256(directory / name) for name in codec.file_names()}
        atomic_write_text(directory / MANIFEST, _manifest_text(manifest))
    except OSError as e:
        raise CheckpointError(f"{directory}: cannot write the model directory ({brief(e)})") from None


def save_config(directory: Path, cfg: Config) -> None:
    """``config.yaml``, written atomically: the configuration the model rebuilds itself from."""
    atomic_write_text(directory / "config.yaml", yaml.safe_dump(to_dict(cfg), sort_keys=False))


def _saveable(model: nn.Module) -> nn.Module:
    """The model itself on the CPU, else a CPU copy: on CUDA the GRU's weights are views of one flat
    cuDNN buffer, which safetensors refuses as shared storage (tied parameters stay tied in the copy)."""
    if all(p.device.type == "cpu" for p in model.parameters()):
        return model
    return copy.deepcopy(model).to("cpu")


def save_checkpoint(directory: Path, model: nn.Module, *, which: Sequence[str], info: dict[str, Any],
                    trainer_state: dict[str, Any] | None = None, keep_snapshots: int | None = None) -> None:
    """Save one checkpoint as one unit: the weights named in ``which`` ("best", "last", "averaged")
    and the trainer state are written and flushed under temporary names, then renamed into place
    with the manifest (their sha256s and ``info``: step, scores) renamed last. A failure before the
    renames leaves the previous checkpoint as it was. ``keep_snapshots``: also save the weights as
    ``checkpoints/step-N.safetensors`` and keep only the newest that many (older files are deleted
    once the manifest no longer names them)."""
    manifest = read_manifest(directory)
    staged: list[tuple[str, Path]] = []
    cpu_model = _saveable(model)
    names = [(w, WEIGHTS[w]) for w in which]
    if keep_snapshots is not None:
        names.append(("snapshot", f"{SNAPSHOTS}/step-{info['step']:08d}.safetensors"))
    dropped: list[dict[str, Any]] = []
    try:
        for w, name in names:
            path = directory / name
            staged.append((staged_write(path, lambda tmp: save_model(cpu_model, tmp, metadata={"format": FORMAT})), path))
            entry = {"file": name, "sha256": sha256(staged[-1][0]), **info}
            if w != "snapshot":
                manifest["weights"][w] = entry
                continue
            kept = [e for e in manifest["snapshots"] if e["file"] != name] + [entry]
            manifest["snapshots"], dropped = kept[-keep_snapshots:], kept[:-keep_snapshots]
        if trainer_state is not None:
            path = directory / TRAINER
            staged.append((staged_write(path, lambda tmp: torch.save(trainer_state, tmp)), path))
            manifest["trainer"] = {"file": TRAINER, "sha256": sha256(staged[-1][0]), "step": info["step"]}
        staged.append((staged_write(directory / MANIFEST, lambda tmp: Path(tmp).write_text(
            _manifest_text(manifest), encoding="utf-8")), directory / MANIFEST))
    except (OSError, RuntimeError, SafetensorError) as e:  # a full disk shows up as any of these
        for tmp, _ in staged:
            Path(tmp).unlink(missing_ok=True)
        raise CheckpointError(f"{directory}: cannot write the checkpoint of step {info['step']} ({brief(e)}); "
                              "the previous checkpoint is intact") from None
    commit(staged)
    for entry in dropped:
        (directory / entry["file"]).unlink(missing_ok=True)


def save_weights(directory: Path, model: nn.Module, *, which: str, info: dict[str, Any]) -> None:
    """Write ``best``, ``last`` or ``averaged`` weights and record their sha256 and ``info`` (step, scores)."""
    save_checkpoint(directory, model, which=(which,), info=info)


def snapshots(directory: Path) -> list[dict[str, Any]]:
    """Manifest entries of the kept validation checkpoints, oldest first."""
    return read_manifest(directory)["snapshots"]


def load_trainer_state(directory: Path) -> dict[str, Any]:
    """The trainer state of the last checkpoint, checked against the manifest (same unit, same step)."""
    manifest = read_manifest(directory)
    entry, last = manifest.get("trainer"), manifest["weights"].get("last")
    if entry is None or last is None:
        raise CheckpointError(f"{directory}: nothing to resume (no checkpoint saved yet); "
                              "train again without --resume")
    if entry["step"] != last["step"]:
        raise CheckpointError(f"{directory / MANIFEST}: {TRAINER} is from step {entry['step']} but "
                              f"{last['file']} from step {last['step']}; the checkpoint is inconsistent")
    path = verified(directory, entry)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure means a file we will not trust
        raise CheckpointError(f"{path}: unreadable or unsafe training state ({type(e).__name__})") from None


def load_config(directory: Path) -> Config:
    path = directory / "config.yaml"
    if not path.exists():
        raise CheckpointError(f"{directory}: no config.yaml")
    try:
        data = safe_yaml(read_limited(path, SMALL_FILE, follow=False).decode("utf-8"))
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read ({brief(e)})") from None
    except (UnicodeDecodeError, yaml.YAMLError, ConfigError):
        raise CheckpointError(f"{path}: corrupt config") from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise CheckpointError(f"{path}: corrupt config (expected sections of key: value)")
    try:
        cfg = config_from_dict(data, str(path))
        check_config(cfg, training=False)
        return cfg
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
    path = verified(directory, entry)
    try:
        target = _saveable(model)  # a CUDA GRU's flat weights are loaded through a CPU copy
        load_model(target, str(path), strict=True, device="cpu" if target is not model else str(device))
        if target is not model:
            model.load_state_dict(target.state_dict())
    except (SafetensorError, RuntimeError, ValueError, OSError) as e:
        raise CheckpointError(f"{path}: weights do not fit this model ({brief(e)})") from None
    for name, tensor in model.state_dict().items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise CheckpointError(f"{path}: {name} holds NaN or infinite values; these weights cannot translate")
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
    digests = read_manifest(directory).get("tokenizer")
    if digests is None:
        raise CheckpointError(f"{directory / MANIFEST}: records no sha256 for the tokenizer (written by an older "
                              "seq2attn, or unfinished); retrain, or add it as \"tokenizer\": {file: sha256}")
    codec = TextCodec.load(directory, digests=digests)
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
