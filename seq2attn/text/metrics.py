"""Corpus metrics through sacrebleu (never re-implemented here), plus exact match."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sacrebleu.metrics import BLEU, CHRF, TER

from seq2attn.errors import ConfigError

METRICS = {"bleu": BLEU, "chrf": CHRF, "ter": TER}


@dataclass(frozen=True)
class Score:
    name: str  # "BLEU", "chrF2", "TER", "exact"
    score: float
    signature: str  # sacrebleu's signature ("" for exact match)
    text: str  # sacrebleu's one-line rendering

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "score": round(self.score, 4), "signature": self.signature, "text": self.text}


def exact_match(hyps: Sequence[str], refs: Sequence[str]) -> float:
    """Percentage of hypotheses identical to their reference (after stripping outer spaces)."""
    if not hyps:
        return 0.0
    return 100.0 * sum(h.strip() == r.strip() for h, r in zip(hyps, refs)) / len(hyps)


def corpus_scores(
    hyps: Sequence[str], refs: Sequence[Sequence[str]], *, metrics: Sequence[str] = ("bleu", "chrf")
) -> list[Score]:
    """Score ``hyps`` against one or more reference streams (each as long as ``hyps``)."""
    out = []
    for name in metrics:
        if name == "exact":
            value = exact_match(hyps, refs[0])
            out.append(Score("exact", value, "", f"exact = {value:.2f}"))
            continue
        if name not in METRICS:
            raise ConfigError(f"--metrics {name!r}; choose from: {', '.join([*METRICS, 'exact'])}")
        metric = METRICS[name]()
        result = metric.corpus_score(list(hyps), [list(r) for r in refs])
        out.append(Score(result.name, float(result.score), str(metric.get_signature()), str(result)))
    return out


def _metric(name: str, *, sentence: bool = False):
    if name not in METRICS:
        raise ConfigError(f"--metrics {name!r}; choose from: {', '.join(METRICS)}")
    # sentence BLEU needs effective order (as `sacrebleu --sentence-level` does), else one
    # missing 4-gram makes it 0
    return BLEU(effective_order=True) if sentence and name == "bleu" else METRICS[name]()


def sentence_scores(
    hyps: Sequence[str], refs: Sequence[Sequence[str]], *, metrics: Sequence[str] = ("bleu", "chrf")
) -> list[dict[str, float]]:
    """Per-line scores: one ``{metric name: score}`` per hypothesis (``exact``: 0 or 100)."""
    out: list[dict[str, float]] = [{} for _ in hyps]
    for name in metrics:
        if name == "exact":
            for row, h, r in zip(out, hyps, refs[0]):
                row["exact"] = 100.0 * (h.strip() == r.strip())
            continue
        metric = _metric(name, sentence=True)
        for i, (row, h) in enumerate(zip(out, hyps)):
            result = metric.sentence_score(h, [stream[i] for stream in refs])
            row[result.name] = float(result.score)
    return out


BOOTSTRAP_SAMPLES = 1000  # sacrebleu's default for --paired-bs
BOOTSTRAP_SEED = 12345  # sacrebleu's default SACREBLEU_SEED


@dataclass(frozen=True)
class Comparison:
    """Paired bootstrap resampling of system B against baseline A on one metric."""

    name: str  # "BLEU", "chrF2", "TER"
    baseline: float
    system: float
    p_value: float  # chance of a difference this large if the systems were equally good
    baseline_mean: float
    baseline_ci: float  # half width of the 95% interval of the bootstrap scores
    system_mean: float
    system_ci: float
    signature: str

    def as_dict(self) -> dict[str, object]:
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in vars(self).items()}


def paired_bootstrap(
    baseline: Sequence[str], system: Sequence[str], refs: Sequence[Sequence[str]], *,
    metrics: Sequence[str] = ("bleu", "chrf"), n_samples: int = BOOTSTRAP_SAMPLES, seed: int = BOOTSTRAP_SEED,
) -> list[Comparison]:
    """sacrebleu's paired bootstrap test (``--paired-bs``), seeded: the same inputs give the same
    p-values."""
    import os

    from sacrebleu.significance import PairedTest

    if n_samples < 1:
        raise ConfigError(f"--samples {n_samples}; must be >= 1")
    chosen = {name: _metric(name) for name in metrics if name != "exact"}
    if not chosen:
        raise ConfigError("--compare needs at least one of: " + ", ".join(METRICS))
    old = os.environ.get("SACREBLEU_SEED")
    os.environ["SACREBLEU_SEED"] = str(seed)  # PairedTest reads its seed from here only
    try:
        test = PairedTest([("baseline", list(baseline)), ("system", list(system))], chosen,
                          references=[list(r) for r in refs], test_type="bs", n_samples=n_samples)
        signatures, scores = test()
    finally:
        if old is None:
            os.environ.pop("SACREBLEU_SEED", None)
        else:
            os.environ["SACREBLEU_SEED"] = old
    out = []
    for name, (base, sys_) in ((k, v) for k, v in scores.items() if k != "System"):
        out.append(Comparison(name, float(base.score), float(sys_.score), float(sys_.p_value),
                              float(base.mean), float(base.ci), float(sys_.mean), float(sys_.ci),
                              signatures[name].format()))
    return out
