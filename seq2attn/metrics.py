"""Corpus metrics through sacrebleu (never re-implemented here), plus exact match."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sacrebleu.metrics import BLEU, CHRF, TER

from .errors import ConfigError

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
