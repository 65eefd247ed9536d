"""seq2attn's side: driven through its own CLI (``python -m seq2attn``), each step a child process.

Capabilities that land in other branches (the Transformer backend, beam search) are detected,
not assumed: a missing one turns its rows into "not available in this build".
"""

from __future__ import annotations

import json
import re
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from .common import Child, run_child, thread_env

CONFIGS = Path(__file__).resolve().parent / "configs"
S2A = [sys.executable, "-m", "seq2attn"]
UNBUCKETED = Path(__file__).resolve().parent / "unbucketed.py"


def config_path(model: str) -> Path:
    return CONFIGS / f"seq2attn-{model}.yaml"


def unavailable(model: str) -> str | None:
    """Why the ``model`` config cannot be built by this seq2attn, or None when it can."""
    from seq2attn.config import resolve_config
    from seq2attn.errors import Seq2AttnError
    from seq2attn.nn.models import build_model

    try:
        cfg = resolve_config(file=config_path(model))
        build_model(cfg.model, src_vocab=16, tgt_vocab=16)
    except Seq2AttnError as e:
        return f"not available in this build ({e})"
    except TypeError as e:  # e.g. a builder without the keyword this config needs
        return f"not available in this build ({e})"
    return None


_BEAM_FLAG: list[str | None] = []


def beam_flag() -> str | None:
    """The translate option for the beam size (``--beam`` / ``--beam-size``), or None."""
    if not _BEAM_FLAG:
        res = subprocess.run([*S2A, "translate", "--help"], capture_output=True, text=True, check=False,
                             env={**thread_env(1), "COLUMNS": "200"})
        found = re.findall(r"--beam(?:-size)?\b", res.stdout)
        _BEAM_FLAG.append(found[0] if found else None)
    return _BEAM_FLAG[0]


@dataclass
class TrainPlan:
    model: str  # "rnn" or "transformer"
    out: Path
    data: dict[str, Path]  # split -> prefix (add .de / .en)
    src: str
    tgt: str
    threads: int
    sets: list[str]  # limits and overrides, e.g. ["train.max_minutes=20"]
    unbucketed: bool = False  # JoeyNMT 2.3.0's batch composition instead of seq2attn's buckets (unbucketed.py)
    device: str = "cpu"  # the benchmark measures CPUs; learning_gap's loss-per-step runs may use cuda


def train(plan: TrainPlan, *, log: Path, extra_env: dict[str, str] | None = None) -> Child:
    d = plan.data
    cmd = [*([sys.executable, str(UNBUCKETED)] if plan.unbucketed else S2A), "train", "--out", str(plan.out), "-c", str(config_path(plan.model)), "--device", plan.device,
           "--train", f"{d['train']}.{plan.src}", f"{d['train']}.{plan.tgt}",
           "--dev", f"{d['dev']}.{plan.src}", f"{d['dev']}.{plan.tgt}",
           "--set", f"train.threads={plan.threads}"]
    for s in plan.sets:
        cmd += ["--set", s]
    return run_child(cmd, log=log, env={**thread_env(plan.threads), **(extra_env or {})})


def translate(model_dir: Path, src: Path, hyp: Path, *, beam: int, batch_tokens: int, threads: int,
              log: Path, max_output_length: int | None = None, weights: str | None = None) -> Child | None:
    """Decode ``src`` into ``hyp``; None when beam search > 1 is not in this build.
    ``max_output_length``: at most that many output tokens for every sentence (a = 0, b = N),
    instead of the model's a x source length + b. ``weights``: best, last or averaged (None:
    translate's own choice, the better of best and averaged by dev BLEU)."""
    cmd = [*S2A, "translate", "-m", str(model_dir), "-i", str(src), "-o", str(hyp), "--device", "cpu",
           "--batch-tokens", str(batch_tokens)]
    if weights is not None:
        cmd += ["--weights", weights]
    if max_output_length is not None:
        cmd += ["--max-len-a", "0", "--max-len-b", str(max_output_length)]
    if beam > 1:
        flag = beam_flag()
        if flag is None:
            return None
        cmd += [flag, str(beam)]
    return run_child(cmd, log=log, env=thread_env(threads))


def metrics(model_dir: Path) -> list[dict]:
    path = model_dir / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def train_rates(rows: list[dict], *, first: int, last: int) -> list[float]:
    """tokens/s of the logging windows ending in (first, last]; a window right after a
    validation is left out (its clock ran through the validation)."""
    rates, after_valid = [], False
    for row in rows:
        if row.get("kind") == "valid":
            after_valid = True
            continue
        if row.get("kind") == "train":
            if first < row["step"] <= last and not after_valid:
                rates.append(float(row["tokens_per_s"]))
            after_valid = False
    return rates


def target_tokens_per_step(rows: list[dict]) -> float | None:
    """Real (non-pad) target tokens per step: each logging window's ``target_tokens`` over its
    steps, the median over windows (None from a build that does not log them)."""
    per_step, prev = [], 0
    for row in rows:
        if row.get("kind") == "train":
            if row.get("target_tokens") is not None and row["step"] > prev:
                per_step.append(row["target_tokens"] / (row["step"] - prev))
            prev = row["step"]
    return round(statistics.median(per_step), 1) if per_step else None


def validation_seconds(rows: list[dict]) -> tuple[int, float]:
    """How many validations ran and the seconds they took in all (``valid_seconds`` of each)."""
    valid = [r for r in rows if r.get("kind") == "valid"]
    return len(valid), round(sum(float(r.get("valid_seconds") or 0.0) for r in valid), 1)


def dev_bleu_at(rows: list[dict], step: int) -> float | None:
    for row in rows:
        if row.get("kind") == "valid" and row["step"] == step:
            return float(row["bleu"])
    return None


def weights_step(model_dir: Path, which: str) -> int | None:
    """The training step of the ``which`` weights (best, last) in the directory's manifest."""
    try:
        manifest = json.loads((model_dir / "manifest.json").read_text())
        return int(manifest["weights"][which]["step"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def last_step(rows: list[dict]) -> int:
    return max((r["step"] for r in rows if "step" in r), default=0)


@dataclass
class ModelFacts:
    params: int
    vocab: int
    model_cfg: dict
    lengths: tuple[float, float]  # mean source / target subword length of the sample, </s> included
    target_pieces: float | None = None  # mean target tokens (</s> included) of every pair trained on


def facts(model_dir: Path, sample_src: list[str], sample_tgt: list[str]) -> ModelFacts:
    """Parameter count, vocabulary and subword lengths, read from the model directory."""
    from seq2attn.config import to_dict
    from seq2attn.modeldir.checkpoint import load
    from seq2attn.nn.models import count_parameters

    loaded = load(model_dir, device="cpu")
    src = loaded.codec.encode(sample_src, side="src")
    tgt = loaded.codec.encode(sample_tgt, side="tgt")
    mean = lambda ids: sum(len(x) + 1 for x in ids) / max(len(ids), 1)
    return ModelFacts(count_parameters(loaded.model), loaded.codec.vocab_size("tgt"),
                      to_dict(loaded.cfg)["model"], (mean(src), mean(tgt)),
                      target_pieces(model_dir, max_length=loaded.cfg.data.max_length))


def target_pieces(model_dir: Path, *, max_length: int) -> float | None:
    """Mean target tokens (</s> included) of the training pairs the run kept, from its corpus store:
    its tokens/s over this is its training sentences/s, a unit that does not depend on the
    tokenizer. None when the run kept no store in its directory."""
    from seq2attn.modeldir import store
    from seq2attn.run.traindata import TrainData

    path = model_dir / store.STORE_DIR
    if not (path / store.MANIFEST).exists():
        return None
    return float(TrainData.from_store(store.open_store(path), max_length=max_length).tgt_tokens.mean())
