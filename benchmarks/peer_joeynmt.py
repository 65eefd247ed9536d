"""JoeyNMT 2.3.0, the peer: its own virtual environment, compatibility shims, configs, runs.

JoeyNMT lives in ``benchmarks/work/joeynmt-venv`` (git-ignored), never in seq2attn's environment.
It is installed with torch pinned to 2.13.0 (the local CPU wheel; any other version would
download gigabytes). JoeyNMT 2.3.0 breaks in four places with today's libraries; the harness
works around each one here and nowhere else (see :data:`SHIMS` and benchmarks/README.md):

1. it imports ``importlib_metadata`` without declaring it: we install that package too;
2. torch 2.13's ``ReduceLROnPlateau`` no longer accepts ``verbose``: the installed
   ``joeynmt/builders.py`` is patched to stop passing it;
3. sentencepiece 0.2.3 lacks ``SetVocabulary``: ``joeynmt/tokenizers.py`` is patched to call it
   only where it exists. Harmless here: the JoeyNMT vocabulary is every piece of the
   sentencepiece model, so restricting segmentation to it changes nothing;
4. ``joeynmt translate -o FILE`` crashes on ``args.n_best``: we decode with ``joeynmt test`` and a
   config whose data section names only the test split.

JoeyNMT has no wall-clock budget, so a budget run is stopped with SIGINT (it saves its current
weights on it), and its ``learning_rate_min`` is set to 1e-8 in the configs so that a warm-up
schedule does not end training early.
"""

from __future__ import annotations

import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from .common import Child, run_child, thread_env
from .unbucketed import token_batch_bounds

JOEYNMT_VERSION = "2.3.0"
TORCH_PIN = "torch==2.13.0"
CONFIGS = Path(__file__).resolve().parent / "configs"
MARKER = ".seq2attn-bench-shims"


@dataclass(frozen=True)
class Shim:
    file: str  # relative to the joeynmt package directory
    old: str
    new: str
    why: str


SHIMS = (
    Shim("builders.py", '            "verbose": False,\n', "",
         "torch 2.13 ReduceLROnPlateau has no `verbose` argument"),
    Shim("tokenizers.py", "        self.spm.SetVocabulary(vocab._itos)",
         "        if hasattr(self.spm, 'SetVocabulary'):  # seq2attn benchmark shim: gone in sentencepiece 0.2.3\n"
         "            self.spm.SetVocabulary(vocab._itos)",
         "sentencepiece 0.2.3 has no SetVocabulary"),
)


def venv_python(work: Path) -> Path:
    return work / "joeynmt-venv" / "bin" / "python"


def ensure_installed(work: Path, *, log: Path) -> Path:
    """The venv's python, creating the venv, installing JoeyNMT and applying the shims if needed."""
    py = venv_python(work)
    venv = work / "joeynmt-venv"
    if (venv / MARKER).is_file():
        return py
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        if not py.is_file():
            subprocess.run(["python3", "-m", "venv", str(venv)],
                           check=True, stdout=out, stderr=subprocess.STDOUT)
        pin = work / "joeynmt-constraints.txt"
        pin.write_text(TORCH_PIN + "\n")
        subprocess.run([str(py), "-m", "pip", "install", "-q", "-c", str(pin), f"joeynmt=={JOEYNMT_VERSION}",
                        "importlib_metadata"], check=True, stdout=out, stderr=subprocess.STDOUT)
    finish_install(work)
    return py


def finish_install(work: Path) -> None:
    """Apply the shims to the JoeyNMT that ``venv_python(work)`` imports and mark the venv ready
    (also for a venv made another way, e.g. gpu_learning_gap.sh's wrapper on a machine without network)."""
    apply_shims(package_dir(venv_python(work)))
    (work / "joeynmt-venv" / MARKER).write_text("".join(f"{s.file}: {s.why}\n" for s in SHIMS))


def package_dir(py: Path) -> Path:
    res = subprocess.run([str(py), "-c", "import importlib.util as u; print(u.find_spec('joeynmt').origin)"],
                         capture_output=True, text=True, check=True)
    return Path(res.stdout.strip()).parent


def apply_shims(pkg: Path) -> None:
    """Patch the installed files; idempotent, and loud when JoeyNMT's code is not what we expect."""
    for shim in SHIMS:
        path = pkg / shim.file
        text = path.read_text(encoding="utf-8")
        if shim.new and shim.new in text:
            continue
        if shim.old not in text:
            if not shim.new:  # a deletion already applied
                continue
            raise RuntimeError(f"{path}: the code the shim for '{shim.why}' patches is not there")
        path.write_text(text.replace(shim.old, shim.new), encoding="utf-8")


# --- data: joint sentencepiece BPE -------------------------------------------------------------
_SPM_CODE = """
import sys, sentencepiece as spm
prefix, size, inputs = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
spm.SentencePieceTrainer.train(input=",".join(inputs), model_prefix=prefix, vocab_size=size,
    model_type="bpe", character_coverage=1.0, unk_id=0, pad_id=1, bos_id=2, eos_id=3,
    input_sentence_size=1000000, shuffle_input_sentence=True, minloglevel=2)
sp = spm.SentencePieceProcessor(model_file=prefix + ".model")
specials = {"<unk>", "<pad>", "<s>", "</s>"}
with open(prefix + ".vocab.txt", "w", encoding="utf-8") as f:
    for i in range(sp.get_piece_size()):
        if sp.id_to_piece(i) not in specials:
            f.write(sp.id_to_piece(i) + "\\n")
"""


def train_sentencepiece(py: Path, inputs: list[Path], prefix: Path, *, vocab_size: int, log: Path) -> tuple[Path, Path]:
    """One joint BPE model over source and target training text: ``prefix.model`` and the JoeyNMT
    vocabulary file (every piece but the 4 specials, which JoeyNMT adds itself)."""
    model, vocab = Path(f"{prefix}.model"), Path(f"{prefix}.vocab.txt")
    if not (model.is_file() and vocab.is_file()):
        prefix.parent.mkdir(parents=True, exist_ok=True)
        child = run_child([str(py), "-c", _SPM_CODE, str(prefix), str(vocab_size), *map(str, inputs)], log=log)
        if child.returncode != 0:
            raise RuntimeError(f"sentencepiece training failed; see {log}")
    return model, vocab


_SPM_LENGTHS_CODE = """
import sys, sentencepiece as spm
sp = spm.SentencePieceProcessor(model_file=sys.argv[1])
for path in sys.argv[2:]:
    with open(path, encoding="utf-8") as f:
        print(" ".join(str(len(p)) for p in sp.encode([line.rstrip("\\n") for line in f])))
"""


def token_lengths(py: Path, spm_model: Path, files: list[Path]) -> list[np.ndarray]:
    """Each file's sentences' lengths in pieces of ``spm_model`` (as JoeyNMT segments them)."""
    res = subprocess.run([str(py), "-c", _SPM_LENGTHS_CODE, str(spm_model), *map(str, files)],
                         check=False, capture_output=True, text=True)  # the return code is checked below
    rows = res.stdout.splitlines()
    if res.returncode != 0 or len(rows) != len(files):
        tail = res.stderr.strip().splitlines()[-1:]
        raise RuntimeError(f"sentencepiece segmentation of {files[0]} failed: {' '.join(tail) or 'no output'}")
    return [np.array(row.split(), dtype=np.int64) for row in rows]


def kept_pairs(src: np.ndarray, tgt: np.ndarray, max_length: int) -> tuple[np.ndarray, np.ndarray]:
    """The pairs both toolkits train on: neither side empty or longer than ``max_length`` tokens."""
    keep = (src > 0) & (src <= max_length) & (tgt > 0) & (tgt <= max_length)
    return src[keep], tgt[keep]


def token_batch_targets(src: np.ndarray, trg: np.ndarray, batch_size: int, *, seed: int = 0,
                        max_length: int = 100) -> float:
    """Mean real (non-pad) target tokens per batch of JoeyNMT 2.3.0's ``TokenBatchSampler`` over a
    shuffled epoch: a batch grows until (its longest ``max(src, trg) + 1``) x sentences reaches
    ``batch_size``, with no bucketing, so it is padded to the longest of random sentences."""
    s, t = kept_pairs(src, trg, max_length)
    order = np.random.default_rng(seed).permutation(len(s))
    bounds = token_batch_bounds(np.maximum(s, t)[order] + 1, batch_size)
    tokens = np.concatenate([[0], np.cumsum(t[order] + 1)])  # real target tokens, EOS included
    return float(np.mean(np.diff(tokens[bounds])))


def target_pieces_per_sentence(src: np.ndarray, trg: np.ndarray, *, max_length: int = 100) -> float:
    """Mean target tokens (EOS included) of the pairs JoeyNMT trains on: its tokens/s over this is
    its training sentences/s, a unit that does not depend on the tokenizer."""
    return float(np.mean(kept_pairs(src, trg, max_length)[1] + 1))


# --- configs -----------------------------------------------------------------------------------
@dataclass
class JoeyPlan:
    model: str  # "rnn" or "transformer"
    model_dir: Path
    data: dict[str, Path]  # split -> prefix
    src: str
    tgt: str
    spm_model: Path
    vocab: Path
    validate_every: int
    max_steps: int | None  # None: until SIGINT
    batch_tokens: int  # training batch budget (JoeyNMT: padded max(src, trg) tokens x sentences)
    log_every: int
    normalization: str = "batch"  # JoeyNMT's loss normalization: batch (its default) or tokens
    max_output_length: int = -1  # decoding: at most this many output tokens (-1: 1.5 x the batch's longest source)
    sets: tuple[str, ...] = ()  # "section.key=value" overrides, applied last (learning_gap.py's variants)


def write_config(plan: JoeyPlan, path: Path, *, splits: tuple[str, ...] = ("train", "dev", "test"),
                 beam: int = 1, ckpt: Path | None = None) -> Path:
    """The template ``configs/joeynmt-{model}.yaml`` with paths and limits filled in."""
    cfg = yaml.safe_load(config_template(plan.model).read_text())
    cfg["model_dir"] = str(plan.model_dir)
    for split in ("train", "dev", "test"):
        cfg["data"].pop(split, None)
        if split in splits:
            cfg["data"][split] = str(plan.data[split])
    for side, lang in (("src", plan.src), ("trg", plan.tgt)):
        cfg["data"][side].update(lang=lang, voc_file=str(plan.vocab),
                                 tokenizer_cfg={"model_file": str(plan.spm_model)})
    cfg["training"].update(validation_freq=plan.validate_every, batch_size=plan.batch_tokens,
                           logging_freq=plan.log_every, normalization=plan.normalization)
    if plan.max_steps is not None:
        # JoeyNMT 2.3.0 reads the step limit from `updates` (config.py: cfg.get("updates")); its key
        # list's `max_updates` is ignored, which let the throughput repeats run on (found 2026-12-01)
        cfg["training"]["updates"] = plan.max_steps
    cfg["testing"]["beam_size"] = beam
    if "train" not in splits:  # decoding only: validation inside training keeps the template's rule
        cfg["testing"]["max_output_length"] = plan.max_output_length
    if ckpt is not None:
        cfg["testing"]["load_model"] = str(ckpt)
    for item in plan.sets:
        apply_set(cfg, item)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def apply_set(cfg: dict, item: str) -> None:
    """One ``section.key=value`` override (the value read as YAML: ``null`` removes a setting's
    effect, e.g. ``training.clip_grad_norm=null``). The sections on the way must exist already, so
    a misspelt section is an error, not a key JoeyNMT silently ignores; a new leaf key is allowed
    (JoeyNMT's defaults cover keys the templates leave out, such as ``model.init_weight``)."""
    key, sep, value = item.partition("=")
    path = key.strip().split(".")
    if not sep or not all(path):
        raise ValueError(f"JoeyNMT override {item!r}: write section.key=value")
    node = cfg
    for i, part in enumerate(path[:-1]):
        child = node.get(part)
        missing = not isinstance(child, dict)
        if missing:
            raise ValueError(f"JoeyNMT override {item!r}: the config has no section {'.'.join(path[:i + 1])!r}")
        node = child
    node[path[-1]] = yaml.safe_load(value)


def config_template(model: str) -> Path:
    return CONFIGS / f"joeynmt-{model}.yaml"


# --- runs --------------------------------------------------------------------------------------
def joeynmt(py: Path) -> list[str]:
    return [str(py), "-m", "joeynmt"]


def train(py: Path, config: Path, model_dir: Path, *, threads: int, budget_min: float | None, log: Path,
          extra_env: dict[str, str] | None = None) -> Child:
    """``joeynmt train``; with ``budget_min``, SIGINT once that many minutes have passed since
    training began (the "EPOCH 1" line: data loading and vocabulary do not count, as for seq2attn)."""
    started: list[float] = []

    def over_budget() -> bool:
        if budget_min is None:
            return False
        if not started:
            train_log = model_dir / "train.log"
            if train_log.is_file() and "EPOCH 1" in train_log.read_text(errors="replace"):
                started.append(time.monotonic())
            return False
        return time.monotonic() - started[0] >= budget_min * 60

    return run_child([*joeynmt(py), "train", str(config), "--skip-test"], log=log,
                     env={**thread_env(threads), **(extra_env or {})}, stop_after=over_budget)


def test(py: Path, config: Path, out_prefix: Path, *, threads: int, log: Path) -> Child:
    """``joeynmt test``: writes ``{out_prefix}.test`` (detokenized, one line per source)."""
    return run_child([*joeynmt(py), "test", str(config), "-o", str(out_prefix)], log=log, env=thread_env(threads))


_STEP = re.compile(r"Step:\s+(\d+),.*Tokens per Sec:\s+([\d.]+)")
_PARAMS = re.compile(r"Total params: (\d+)")
_VALID_BLEU = re.compile(r"Evaluation result \(greedy\).*?bleu:\s+([\d.]+)", re.IGNORECASE)
_GEN = re.compile(r"Generation took ([\d.]+)\[sec\]")


def train_rates(model_dir: Path, *, first: int, last: int) -> list[float]:
    """Target tokens/s of the logging windows ending in (first, last] (JoeyNMT leaves validation
    time out of these itself)."""
    text = (model_dir / "train.log").read_text(errors="replace")
    return [float(r) for s, r in _STEP.findall(text) if first < int(s) <= last]


_STAMPED_STEP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+) .*Step:\s+(\d+),.*Tokens per Sec:\s+([\d.]+)")
_EVAL = re.compile(r"Evaluation result \((?:greedy|beam search)\).*?([\d.]+)\[sec\]")
_EPOCH = re.compile(r" - EPOCH \d+$")


def target_tokens_per_step(model_dir: Path) -> float | None:
    """Real (non-pad) target tokens per step, the median over logging windows with no
    validation inside: JoeyNMT's rate (``batch.ntokens``, non-pad target tokens, per second of
    training) times the window's seconds (from the log's time stamps) over its steps."""
    import datetime as dt
    import statistics

    per_step, prev = [], None
    for line in (model_dir / "train.log").read_text(errors="replace").splitlines():
        if _EVAL.search(line) or _EPOCH.search(line):
            prev = None  # the next window's clock ran through a validation, or its counters restarted
            continue
        m = _STAMPED_STEP.match(line)
        if not m:
            continue
        t, step, rate = dt.datetime.strptime(m[1], "%Y-%m-%d %H:%M:%S,%f"), int(m[2]), float(m[3])
        if prev is not None and step > prev[1]:
            per_step.append(rate * (t - prev[0]).total_seconds() / (step - prev[1]))
        prev = (t, step)
    return round(statistics.median(per_step), 1) if per_step else None


def validation_seconds(model_dir: Path) -> tuple[int, float]:
    """How many validations ran and their seconds in all. JoeyNMT logs a validation in two parts:
    "Generation took X[sec]" (decoding the dev set) and "Evaluation result (...): ..., Y[sec]"
    (scoring it); X + Y is what seq2attn's ``valid_seconds`` covers. train.log holds validations
    only (training runs with --skip-test)."""
    text = (model_dir / "train.log").read_text(errors="replace")
    evals = _EVAL.findall(text)
    return len(evals), round(sum(float(x) for x in evals) + sum(float(x) for x in _GEN.findall(text)), 1)


_INTERRUPT = re.compile(r"Interrupt at epoch \d+, step (\d+)")


_REPORT_FIELD = re.compile(r"(\w+): ([-\d.e]+|nan|inf)")


def validations(model_dir: Path) -> list[dict]:
    """Each validation of ``validations.txt`` (JoeyNMT's one line per validation: ``Steps: N``
    then ``metric: value`` tab-separated: loss, ppl, acc and the eval metrics, and ``LR``) as a
    dict with ``step`` and every field lowercased: ``loss`` (per sentence under ``batch``
    normalization, per token under ``tokens``), ``ppl`` (exp of nats per token), ``bleu``, ``lr``."""
    path = model_dir / "validations.txt"
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines() if path.is_file() else []:
        fields = {k.lower(): float(v) for k, v in _REPORT_FIELD.findall(line)}
        if "steps" in fields:
            rows.append({"step": int(fields.pop("steps")), **fields})
    return rows


def last_step(model_dir: Path) -> int:
    """The last step trained: from the interrupt line, else the last logged step."""
    text = (model_dir / "train.log").read_text(errors="replace")
    steps = [int(s) for s, _ in _STEP.findall(text)] + [int(s) for s in _INTERRUPT.findall(text)]
    return max(steps, default=0)


def params(model_dir: Path) -> int | None:
    found = _PARAMS.findall((model_dir / "train.log").read_text(errors="replace"))
    return int(found[-1]) if found else None


def generation_seconds(log: Path) -> float | None:
    found = _GEN.findall(log.read_text(errors="replace"))
    return float(found[-1]) if found else None


def decoding_checkpoint(model_dir: Path, *, weights: str) -> Path:
    """The weights JoeyNMT decodes with (``--decode-weights``): ``last``, its weights at the end of
    the budget (``latest.ckpt``, saved on SIGINT), as seq2attn decodes its ``last``; ``best``, its
    best by dev BLEU (``best.ckpt``, the latest when no validation ran)."""
    if weights not in ("last", "best"):
        raise ValueError(f"decode weights {weights!r}: choose last or best")
    best = model_dir / "best.ckpt"
    return best if weights == "best" and best.exists() else latest_checkpoint(model_dir)


def latest_checkpoint(model_dir: Path) -> Path:
    """The weights saved last (on SIGINT or at the end): ``latest.ckpt``, else the newest step."""
    latest = model_dir / "latest.ckpt"
    if latest.exists():
        return latest
    ckpts = sorted(model_dir.glob("*.ckpt"), key=lambda p: p.stat().st_mtime)
    if not ckpts:
        raise RuntimeError(f"{model_dir}: JoeyNMT saved no checkpoint")
    return ckpts[-1]
