"""The measurements of one model on each side, as JSON-ready dicts (see README.md for each figure)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import common, flops
from . import peer_joeynmt as joey
from . import seq2attn_side as s2a
from .common import GIB, Child, check
from .report import peak_fraction


@dataclass
class Setup:
    run_dir: Path
    data: dict[str, Path]  # split -> prefix (add .de / .en)
    one: Path  # a one-sentence test set (prefix)
    mode: Any  # run.Mode
    args: argparse.Namespace
    peak: dict[str, float]  # GFLOP/s, fp32 and bf16
    bf16_skip: str | None = None  # why the bf16 run is left out (run.bf16_skip_reason), or None
    cache: dict[str, Any] = field(default_factory=dict)

    @property
    def log_every(self) -> int:
        return max(1, min(10, self.mode.measure_steps // 4))

    @property
    def window(self) -> tuple[int, int]:
        return self.mode.warmup_steps, self.mode.warmup_steps + self.mode.measure_steps


def _gib(child: Child) -> float:
    return round(child.peak_rss_bytes / GIB, 3)


def _fraction(tps: float | None, flops_per_token: float, peak_gflops: float | None) -> float | None:
    if tps is None or not peak_gflops:
        return None
    return round(tps * flops_per_token / (peak_gflops * 1e9), 3)


def _validations(counted: tuple[int, float]) -> dict:
    """Both budgets include validation time (each side validates every --validate-every steps)."""
    return {"validations": counted[0], "valid_seconds": counted[1]}


# --- seq2attn ----------------------------------------------------------------------------------
def _s2a_sets(st: Setup, *, validate_every: int) -> list[str]:
    a = st.args
    return [f"train.batch_tokens={a.batch_tokens}", f"tokenizer.vocab_size={a.vocab_size}",
            f"train.log_every={st.log_every}", f"train.validate_every={validate_every}", *a.seq2attn_set]


def no_validation_within(steps: int, log_every: int) -> int:
    """A validation interval that puts no validation within ``steps`` steps and that JoeyNMT
    accepts: it refuses a ``validation_freq`` that ``logging_freq`` does not divide."""
    return log_every * (steps // log_every + 1)


def _window_run(model: str, st: Setup, tag: str, extra: list[str], *, unbucketed: bool = False) -> tuple[list, Child]:
    """seq2attn trained for just the measured window's steps, no validation inside (its own
    directory): its metrics rows and its process."""
    steps = st.window[1]
    out_dir = st.run_dir / f"seq2attn-{model}-{tag}"
    child = s2a.train(s2a.TrainPlan(model, out_dir, st.data, "de", "en", st.args.threads,
                                    [*_s2a_sets(st, validate_every=no_validation_within(steps, st.log_every)),
                                     f"train.max_steps={steps}", *extra], unbucketed=unbucketed),
                      log=st.run_dir / "logs" / f"seq2attn-{model}-{tag}.log",
                      extra_env=common.malloc_env(st.args.malloc, side="seq2attn"))
    check(child, f"seq2attn {model} {tag}")
    return s2a.metrics(out_dir), child


def throughput_seq2attn(model: str, st: Setup, repeat: int) -> float | None:
    """A repeat of the throughput figure alone (the budget run is repeat 1)."""
    rows, _ = _window_run(model, st, f"throughput{repeat}", [])
    return common.steady_rate(s2a.train_rates(rows, first=st.window[0], last=st.window[1]), skip=0)


EQUAL_PADDING = "JoeyNMT 2.3.0's TokenBatchSampler: random order, no bucketing, at JoeyNMT's padded budget"


def equal_padding_budget(st: Setup, py: Path | None) -> int | None:
    """The padded budget of the "equal padding" runs: JoeyNMT's own (``joey_batch``); without
    JoeyNMT only a given one (``--joey-batch-tokens same`` or N: ``match`` needs its tokenizer)."""
    given = st.args.joey_batch_tokens
    if py is not None:
        return joey_batch(st, py)["batch_tokens"]
    return st.args.batch_tokens if given == "same" else int(given) if given.isdigit() else None


def equal_padding_seq2attn(model: str, st: Setup, repeat: int, batch_tokens: int) -> dict:
    """seq2attn's step on batches of JoeyNMT's composition at JoeyNMT's padded budget
    (``unbucketed.py``), the window's steps alone: what is left of the training ratio once both
    toolkits pad alike."""
    rows, child = _window_run(model, st, f"equalpad{repeat}", [f"train.batch_tokens={batch_tokens}"],
                              unbucketed=True)
    return {"tokens_per_s": common.steady_rate(s2a.train_rates(rows, first=st.window[0], last=st.window[1]), skip=0),
            "target_tokens_per_step": s2a.target_tokens_per_step(rows), "peak_rss_gib": _gib(child)}


def add_equal_padding_repeat(side: dict, fig: dict | None, batch_tokens: int) -> None:
    """Fold one "equal padding" run into ``side["train_equal_padding"]``; a failed one (None) keeps
    its place in the ``*_runs`` lists, so that repeat r still pairs with JoeyNMT's repeat r."""
    import statistics

    ep = side.setdefault("train_equal_padding", {"batch_tokens": batch_tokens, "composition": EQUAL_PADDING})
    for key in ("tokens_per_s", "target_tokens_per_step", "peak_rss_gib"):
        runs = ep.setdefault(f"{key}_runs", [])
        runs.append(None if fig is None else fig.get(key))
        values = [v for v in runs if v is not None]
        ep[key] = (max(values) if key == "peak_rss_gib" else round(statistics.median(values), 1)) if values else None


def train_seq2attn(model: str, st: Setup, peak: float | None = None) -> dict:
    """The budget run (its window is throughput repeat 1; ``peak``: the fp32 matmul peak measured
    just before it, else the run's), then the bf16 run."""
    a, mode = st.args, st.mode
    peak = st.peak.get("fp32") if peak is None else peak
    common_sets = _s2a_sets(st, validate_every=mode.validate_every)
    budget = [f"train.max_minutes={mode.budget_min}"] + ([f"train.max_steps={a.max_steps}"] if a.max_steps else [])
    fp32_dir = st.run_dir / f"seq2attn-{model}"
    fp32 = s2a.train(s2a.TrainPlan(model, fp32_dir, st.data, "de", "en", a.threads, common_sets + budget),
                     log=st.run_dir / "logs" / f"seq2attn-{model}-train.log",
                     extra_env=common.malloc_env(a.malloc, side="seq2attn"))
    check(fp32, f"seq2attn {model} training")
    rows = s2a.metrics(fp32_dir)
    sample = [common.read_lines(Path(f"{st.data['train']}.{lang}"))[:2000] for lang in ("de", "en")]
    facts = s2a.facts(fp32_dir, *sample)
    fpt = flops.training_flops_per_token(facts.model_cfg, vocab=facts.vocab, lengths=flops.Lengths(*facts.lengths))
    tps = common.steady_rate(s2a.train_rates(rows, first=st.window[0], last=st.window[1]), skip=0)
    out = {"params": facts.params, "params_m": round(facts.params / 1e6, 2),
           "flops_per_target_token": round(fpt), "mean_lengths": [round(x, 2) for x in facts.lengths],
           "target_pieces_per_sentence": None if facts.target_pieces is None else round(facts.target_pieces, 3),
           "train": {"tokens_per_s": tps, "tokens_per_s_runs": [tps], "flops_per_token": fpt,
                     "matmul_peak_fp32_runs": [peak], "peak_fraction": _fraction(tps, fpt, peak),
                     "peak_rss_gib": _gib(fp32), "window_steps": list(st.window)},
           "budget": {"minutes": mode.budget_min, "steps": s2a.last_step(rows), "wall_s": round(fp32.wall_s, 1),
                      "validate_every": mode.validate_every,
                      "batch": {"batch_tokens": a.batch_tokens, "rule": "--batch-tokens"},
                      "target_tokens_per_step": s2a.target_tokens_per_step(rows),
                      **_validations(s2a.validation_seconds(rows))}}
    out["bf16"] = {"skipped": st.bf16_skip} if st.bf16_skip else _bf16_run(model, st, common_sets, fpt, rows)
    return out


def _bf16_run(model: str, st: Setup, sets: list[str], fpt: float, fp32_rows: list[dict]) -> dict:
    steps = st.mode.bf16_steps
    bf16_dir = st.run_dir / f"seq2attn-{model}-bf16"
    child = s2a.train(s2a.TrainPlan(model, bf16_dir, st.data, "de", "en", st.args.threads,
                                    [*sets, "train.precision=bf16", f"train.max_steps={steps}"]),
                      log=st.run_dir / "logs" / f"seq2attn-{model}-bf16-train.log",
                      extra_env=common.malloc_env(st.args.malloc, side="seq2attn"))
    if child.returncode != 0:
        tail = child.log.read_text(errors="replace").strip().splitlines()[-1:]
        return {"error": f"exit {child.returncode}: {' '.join(tail)}"}
    rows = s2a.metrics(bf16_dir)
    tps = common.steady_rate(s2a.train_rates(rows, first=st.window[0], last=st.window[1]), skip=0)
    return {"tokens_per_s": tps, "peak_fraction": _fraction(tps, fpt, st.peak.get("bf16")),
            "peak_rss_gib": _gib(child), "steps": steps, "dev_bleu": s2a.dev_bleu_at(rows, steps),
            "fp32_dev_bleu": s2a.dev_bleu_at(fp32_rows, steps)}


@dataclass(frozen=True)
class Search:
    name: str  # its key under "decode": greedy, beam5; greedy_cap100, beam5_cap100 (secondary)
    beam: int
    cap: int | None  # at most this many output tokens on both sides; None: each toolkit's own rule
    repeats: int


def searches(st: Setup) -> list[Search]:
    """The headline searches under --max-output-length (0, the default: each toolkit's own length
    rule), R times each; then, when that is the own rule and --shared-cap N is given, the same
    searches with both toolkits capped at N output tokens, once each (a secondary figure)."""
    a = st.args
    own = a.max_output_length or None
    out = [Search("greedy", 1, own, a.repeats), Search(f"beam{a.beam}", a.beam, own, a.repeats)]
    if own is None and getattr(a, "shared_cap", 0):
        out += [Search(f"{s.name}_cap{a.shared_cap}", s.beam, a.shared_cap, 1) for s in out]
    return out


def length_rule(cap: int | None) -> str:
    return "own" if cap is None else f"cap {cap}"


def _s2a_decode_kw(st: Setup, cap: int | None) -> dict:
    return {"batch_tokens": st.args.decode_batch_tokens, "threads": st.args.threads,
            "max_output_length": cap, "weights": st.args.decode_weights}


def startup_seq2attn(model: str, st: Setup) -> Child:
    """The same decoding command on one sentence: its start-up time, subtracted from each run."""
    start = s2a.translate(st.run_dir / f"seq2attn-{model}", st.one.with_suffix(".de"),
                          st.run_dir / f"seq2attn-{model}.one.hyp", beam=1,
                          log=st.run_dir / "logs" / f"seq2attn-{model}-startup.log", **_s2a_decode_kw(st, None))
    check(start, f"seq2attn {model} decoding")
    return start


def decode_once_seq2attn(model: str, st: Setup, search: Search, start: Child, repeat: int = 1) -> dict:
    tag = search.name if repeat == 1 else f"{search.name}.r{repeat}"
    hyp = st.run_dir / f"seq2attn-{model}.test.{tag}.hyp"
    child = s2a.translate(st.run_dir / f"seq2attn-{model}", Path(f"{st.data['test']}.de"), hyp, beam=search.beam,
                          log=st.run_dir / "logs" / f"seq2attn-{model}-{tag}.log", **_s2a_decode_kw(st, search.cap))
    if child is None:
        return {"unavailable": "not available in this build (no --beam option in seq2attn translate)"}
    check(child, f"seq2attn {model} {search.name} decoding")
    weights = st.args.decode_weights
    step = s2a.weights_step(st.run_dir / f"seq2attn-{model}", weights)
    return {**decode_figures(child, start, hyp, Path(f"{st.data['test']}.en")), "length_rule": length_rule(search.cap),
            "weights": weights if step is None else f"{weights} (step {step})"}


def decode_seq2attn(model: str, st: Setup) -> dict:
    """Each search once (``--decode-only`` and single-repeat runs)."""
    start = startup_seq2attn(model, st)
    return {s.name: decode_once_seq2attn(model, st, s, start) for s in searches(st)}


def combine_repeats(runs: list[dict]) -> dict:
    """One decoding figure from repeated runs: sent/s and words/s are the median (each run's value
    under ``*_runs``), peak RSS the largest, the rest (BLEU, words) the first run's: the outputs
    are the same each time. Failed runs are left out (``failed_repeats`` counts them)."""
    import statistics

    ok = lambda r: "error" not in r and "unavailable" not in r
    good = [r for r in runs if ok(r)]
    if not good:
        return runs[0] if runs else {"error": "no run"}
    out = dict(good[0])
    if len(good) < len(runs):
        out["failed_repeats"] = len(runs) - len(good)
    for key in ("sent_per_s", "words_per_s"):  # a failed run keeps its place (None): repeat r pairs with r
        out[key] = round(statistics.median(r[key] for r in good), 2)
        out[f"{key}_runs"] = [r[key] if ok(r) else None for r in runs]
    out["peak_rss_gib"] = max(r["peak_rss_gib"] for r in good)
    out["repeats"] = len(good)
    return out


def add_throughput_repeat(side: dict, tps: float | None, peak: float | None) -> None:
    """Fold one more throughput run into a side's ``train`` figures (median of the runs); a failed
    run (None) keeps its place, so that repeat r still pairs with the other side's repeat r.
    ``peak``: the fp32 matmul peak measured just before this repeat (seq2attn's side)."""
    import statistics

    train = side.get("train")
    if not isinstance(train, dict):
        return
    train.setdefault("tokens_per_s_runs", [train.get("tokens_per_s")]).append(tps)
    values = [v for v in train["tokens_per_s_runs"] if v is not None]
    train["tokens_per_s"] = round(statistics.median(values), 1) if values else None
    if "flops_per_token" in train:
        train.setdefault("matmul_peak_fp32_runs", []).append(peak)
        train["peak_fraction"] = peak_fraction(train)


def decode_figures(child: Child, startup: Child, hyp: Path, ref: Path) -> dict:
    """sent/s and words/s net of start-up (imports, model loading): ``(N - 1) / (T_N - T_1)``, with
    ``T_1`` the wall time of the same command on one sentence."""
    n = len(common.read_lines(ref))
    net = child.wall_s - startup.wall_s
    if net <= 0 or n < 2:  # too little work to separate from start-up: report the gross rate
        net, n_net = child.wall_s, n
    else:
        n_net = n - 1
    words = common.output_words(hyp)
    return {"sentences": n, "wall_s": round(child.wall_s, 2), "startup_s": round(startup.wall_s, 2),
            "sent_per_s": round(n_net / net, 2), "words_per_s": round(words * n_net / n / net, 1),
            "output_words": words, "bleu": common.bleu(hyp, ref), "peak_rss_gib": _gib(child)}


# --- JoeyNMT -----------------------------------------------------------------------------------
def _spm(st: Setup, py: Path) -> tuple[Path, Path]:
    if "spm" not in st.cache:
        inputs = [Path(f"{st.data['train']}.{lang}") for lang in ("de", "en")]
        st.cache["spm"] = joey.train_sentencepiece(py, inputs, st.run_dir / "joeynmt-spm" / "joint",
                                                   vocab_size=st.args.vocab_size,
                                                   log=st.run_dir / "logs" / "joeynmt-spm.log")
    return st.cache["spm"]


def joey_batch(st: Setup, py: Path) -> dict:
    """JoeyNMT's ``batch_size`` (padded tokens) and how it was chosen (``--joey-batch-tokens``).

    Both toolkits count a batch's budget in padded tokens, but seq2attn buckets pairs by length and
    JoeyNMT fills a batch with random pairs padded to the longest, so at one budget a JoeyNMT step
    holds about half the real target tokens. ``match`` (the default) gives JoeyNMT the budget at
    which its sampler's real target tokens per batch equal seq2attn's, both simulated over the
    training data in JoeyNMT's own pieces; each side's measured figure is in the table."""
    if "joey_batch" in st.cache:
        return st.cache["joey_batch"]
    given, ours = st.args.joey_batch_tokens, st.args.batch_tokens
    if given != "match":
        out = {"batch_tokens": ours if given == "same" else int(given), "rule": given}
    else:
        src, tgt = joey_lengths(st, py)
        want = seq2attn_batch_targets(src, tgt, ours)
        lo, hi = ours // 64, 8 * ours // 64  # in steps of 64 tokens
        while lo < hi:  # the smallest budget whose batches reach ``want`` real target tokens
            mid = (lo + hi) // 2
            lo, hi = (mid + 1, hi) if joey.token_batch_targets(src, tgt, 64 * mid) < want else (lo, mid)
        out = {"batch_tokens": 64 * lo, "rule": "match",
               "simulated_target_tokens_per_step": {"seq2attn": round(want, 1),
                                                    "joeynmt": round(joey.token_batch_targets(src, tgt, 64 * lo), 1),
                                                    "joeynmt_at_same_budget": round(
                                                        joey.token_batch_targets(src, tgt, ours), 1)}}
    st.cache["joey_batch"] = out
    return out


def joey_lengths(st: Setup, py: Path) -> list[np.ndarray]:
    """Source and target lengths of the training pairs in JoeyNMT's sentencepiece pieces."""
    if "joey_lengths" not in st.cache:
        files = [Path(f"{st.data['train']}.{lang}") for lang in ("de", "en")]
        st.cache["joey_lengths"] = joey.token_lengths(py, _spm(st, py)[0], files)
    return st.cache["joey_lengths"]


def seq2attn_batch_targets(src: np.ndarray, tgt: np.ndarray, batch_tokens: int, *, max_length: int = 100) -> float:
    """Mean real target tokens per batch of seq2attn's bucketed plan (``data.plan_epoch``)."""
    from seq2attn.nn.batches import plan_epoch

    src, tgt = joey.kept_pairs(src, tgt, max_length)
    longer, tokens = np.maximum(src, tgt), tgt + 1
    plan = plan_epoch(longer, batch_tokens=batch_tokens, seed=0, epoch=0)
    return float(np.mean([tokens[plan.batch(k)].sum() for k in range(len(plan))]))


def _plan(model: str, st: Setup, py: Path, cap: int | None = None) -> joey.JoeyPlan:
    spm_model, vocab = _spm(st, py)
    return joey.JoeyPlan(model, st.run_dir / f"joeynmt-{model}", dict(st.data), "de", "en", spm_model, vocab,
                         validate_every=st.mode.validate_every, max_steps=st.args.max_steps,
                         batch_tokens=joey_batch(st, py)["batch_tokens"], log_every=st.log_every,
                         normalization=st.args.joey_normalization,
                         max_output_length=cap or -1)


def throughput_joey(model: str, st: Setup, py: Path, repeat: int) -> float | None:
    """JoeyNMT's throughput repeat: the measured window's steps alone, no validation inside."""
    import dataclasses

    steps = st.window[1]
    plan = dataclasses.replace(_plan(model, st, py), model_dir=st.run_dir / f"joeynmt-{model}-throughput{repeat}",
                               max_steps=steps, validate_every=no_validation_within(steps, st.log_every))
    cfg = joey.write_config(plan, st.run_dir / "configs" / f"joeynmt-{model}-throughput{repeat}.yaml")
    child = joey.train(py, cfg, plan.model_dir, threads=st.args.threads, budget_min=None,
                       log=st.run_dir / "logs" / f"joeynmt-{model}-throughput{repeat}.log",
                       extra_env=common.malloc_env(st.args.malloc, side="joeynmt"))
    check(child, f"JoeyNMT {model} throughput repeat {repeat}")
    return common.steady_rate(joey.train_rates(plan.model_dir, first=st.window[0], last=st.window[1]), skip=0)


def train_joey(model: str, st: Setup, py: Path) -> dict:
    plan = _plan(model, st, py)
    cfg = joey.write_config(plan, st.run_dir / "configs" / f"joeynmt-{model}-train.yaml")
    child = joey.train(py, cfg, plan.model_dir, threads=st.args.threads, budget_min=st.mode.budget_min,
                       log=st.run_dir / "logs" / f"joeynmt-{model}-train.log",
                       extra_env=common.malloc_env(st.args.malloc, side="joeynmt"))
    check(child, f"JoeyNMT {model} training")
    params = joey.params(plan.model_dir)
    tps = common.steady_rate(joey.train_rates(plan.model_dir, first=st.window[0], last=st.window[1]), skip=0)
    return {"params": params, "params_m": None if params is None else round(params / 1e6, 2),
            "target_pieces_per_sentence": round(joey.target_pieces_per_sentence(*joey_lengths(st, py)), 3),
            "train": {"tokens_per_s": tps, "tokens_per_s_runs": [tps], "peak_rss_gib": _gib(child),
                      "window_steps": list(st.window)},
            "budget": {"minutes": st.mode.budget_min, "steps": joey.last_step(plan.model_dir),
                       "validate_every": st.mode.validate_every,
                       "wall_s": round(child.wall_s, 1), "batch": joey_batch(st, py),
                       "target_tokens_per_step": joey.target_tokens_per_step(plan.model_dir),
                       **_validations(joey.validation_seconds(plan.model_dir))}}


def startup_joey(model: str, st: Setup, py: Path) -> Child:
    plan = _plan(model, st, py)
    ckpt = joey.decoding_checkpoint(plan.model_dir, weights=st.args.decode_weights)
    one = joey.JoeyPlan(**{**vars(plan), "data": {**plan.data, "test": st.one}})
    start = joey.test(py, joey.write_config(one, st.run_dir / "configs" / f"joeynmt-{model}-one.yaml",
                                            splits=("test",), ckpt=ckpt),
                      st.run_dir / f"joeynmt-{model}.one", threads=st.args.threads,
                      log=st.run_dir / "logs" / f"joeynmt-{model}-startup.log")
    check(start, f"JoeyNMT {model} decoding")
    return start


def decode_once_joey(model: str, st: Setup, py: Path, search: Search, start: Child, repeat: int = 1) -> dict:
    plan = _plan(model, st, py, search.cap)
    tag = search.name if repeat == 1 else f"{search.name}.r{repeat}"
    ckpt = joey.decoding_checkpoint(plan.model_dir, weights=st.args.decode_weights)
    cfg = joey.write_config(plan, st.run_dir / "configs" / f"joeynmt-{model}-{tag}.yaml", splits=("test",),
                            beam=search.beam, ckpt=ckpt)
    prefix = st.run_dir / f"joeynmt-{model}.{tag}"
    child = joey.test(py, cfg, prefix, threads=st.args.threads, log=st.run_dir / "logs" / f"joeynmt-{model}-{tag}.log")
    check(child, f"JoeyNMT {model} {search.name} decoding")
    out = decode_figures(child, start, Path(f"{prefix}.test"), Path(f"{st.data['test']}.en"))
    out["generation_s"] = joey.generation_seconds(child.log)
    return {**out, "length_rule": length_rule(search.cap), "weights": f"{st.args.decode_weights} ({ckpt.resolve().name})"}


def decode_joey(model: str, st: Setup, py: Path) -> dict:
    """Each search once (``--decode-only`` and single-repeat runs)."""
    start = startup_joey(model, st, py)
    return {s.name: decode_once_joey(model, st, py, s, start) for s in searches(st)}
