"""Ratios (seq2attn / JoeyNMT), the issue's targets marked pass / miss, and the stderr table.

Every ratio is taken between figures measured in the same run on the same machine: absolute
seconds drift between runs on a shared machine, ratios much less.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

# (name, how to read it, threshold per model: rnn / transformer)
BEAM_TARGET = {"rnn": 3.0, "rnn-luong": 3.0, "transformer": 5.0}


@dataclass
class Target:
    name: str
    value: float | None
    goal: str  # e.g. ">= 2.5"
    passed: bool | None  # None: a figure is missing


def _get(d: dict, *path: str) -> Any:
    for key in path:
        if not isinstance(d, dict) or d.get(key) is None:
            return None
        d = d[key]
    return d


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return round(a / b, 2)


def ratios(ours: dict, peer: dict) -> dict[str, float | None]:
    r = {
        "train_tokens_per_s_fp32": ratio(_get(ours, "train", "tokens_per_s"), _get(peer, "train", "tokens_per_s")),
        "train_tokens_per_s_bf16": ratio(_get(ours, "bf16", "tokens_per_s"), _get(peer, "train", "tokens_per_s")),
        "train_tokens_per_s_bf16_vs_fp32": ratio(_get(ours, "bf16", "tokens_per_s"), _get(ours, "train", "tokens_per_s")),
        "train_peak_rss": ratio(_get(ours, "train", "peak_rss_gib"), _get(peer, "train", "peak_rss_gib")),
    }
    for search in ("greedy", "beam5"):
        r[f"decode_sent_per_s_{search}"] = ratio(_get(ours, "decode", search, "sent_per_s"),
                                                 _get(peer, "decode", search, "sent_per_s"))
        r[f"decode_words_per_s_{search}"] = ratio(_get(ours, "decode", search, "words_per_s"),
                                                  _get(peer, "decode", search, "words_per_s"))
    r["decode_peak_rss"] = ratio(_decode_rss(ours), _decode_rss(peer))
    return r


def _decode_rss(side: dict) -> float | None:
    values = [_get(side, "decode", s, "peak_rss_gib") for s in ("greedy", "beam5")]
    values = [v for v in values if v is not None]
    return max(values) if values else None


def _at_least(name: str, value: float | None, goal: float) -> Target:
    return Target(name, value, f">= {goal:g}", None if value is None else value >= goal)


def _at_most(name: str, value: float | None, goal: float) -> Target:
    return Target(name, value, f"<= {goal:g}", None if value is None else value <= goal)


def targets(model: str, ours: dict, peer: dict, r: dict[str, float | None]) -> list[Target]:
    """Issue 13's targets for one model (issue 3's where 13 names none: greedy and decoding-RSS
    ratios, the Transformer's beam, the bf16 BLEU drop); peer-free ones are checked even without
    the peer."""
    bleu_gap = None
    fp32, bf16 = _get(ours, "bf16", "fp32_dev_bleu"), _get(ours, "bf16", "dev_bleu")
    if fp32 is not None and bf16 is not None:
        bleu_gap = round(fp32 - bf16, 2)
    out = [
        _at_least("train tok/s fp32 vs JoeyNMT", r["train_tokens_per_s_fp32"], 3.0),
        _at_least("train fp32 fraction of matmul peak", _get(ours, "train", "peak_fraction"), 0.55),
        _at_least("train tok/s bf16 vs seq2attn fp32", r.get("train_tokens_per_s_bf16_vs_fp32"), 2.0),
        _at_most("dev BLEU drop bf16 vs fp32 (same steps)", bleu_gap, 0.5),
        _at_least("decode sent/s beam 5 vs JoeyNMT", r["decode_sent_per_s_beam5"], BEAM_TARGET[model]),
        _at_least("decode sent/s greedy vs JoeyNMT", r["decode_sent_per_s_greedy"], 2.0),
        _at_most("train peak RSS vs JoeyNMT", r["train_peak_rss"], 0.5),
        _at_most("decode peak RSS vs JoeyNMT", r["decode_peak_rss"], 1.0),
    ]
    for search in ("greedy", "beam5"):
        a, b = _get(ours, "decode", search, "bleu"), _get(peer, "decode", search, "bleu")
        gain = None if a is None or b is None else round(a - b, 2)
        out.append(_at_least(f"test BLEU {search} minus JoeyNMT (same budget)", gain, 2.0))
    return out


def as_json(ts: list[Target]) -> list[dict]:
    return [asdict(t) for t in ts]


# --- the table ---------------------------------------------------------------------------------
ROWS = [  # label, path into a side's figures
    ("params (M)", ("params_m",)),
    ("train tok/s fp32", ("train", "tokens_per_s")),
    ("  fraction of fp32 matmul peak", ("train", "peak_fraction")),
    ("train tok/s bf16", ("bf16", "tokens_per_s")),
    ("  fraction of bf16 matmul peak", ("bf16", "peak_fraction")),
    ("dev BLEU fp32 / bf16 at same step", ("bf16", "dev_bleu_pair")),
    ("budget steps", ("budget", "steps")),
    ("  batch budget (padded tokens)", ("budget", "batch", "batch_tokens")),
    ("  real target tokens per step", ("budget", "target_tokens_per_step")),
    ("  validations / seconds in budget", ("budget", "valid_pair")),
    ("test BLEU greedy", ("decode", "greedy", "bleu")),
    ("test BLEU beam 5", ("decode", "beam5", "bleu")),
    ("decode sent/s greedy", ("decode", "greedy", "sent_per_s")),
    ("decode sent/s beam 5", ("decode", "beam5", "sent_per_s")),
    ("decode words/s greedy", ("decode", "greedy", "words_per_s")),
    ("decode words/s beam 5", ("decode", "beam5", "words_per_s")),
    ("peak RSS train (GiB)", ("train", "peak_rss_gib")),
    ("peak RSS decode greedy (GiB)", ("decode", "greedy", "peak_rss_gib")),
    ("peak RSS decode beam 5 (GiB)", ("decode", "beam5", "peak_rss_gib")),
]


def _cell(side: dict, path: tuple[str, ...]) -> str:
    if side.get("unavailable") or _get(side, *path[:-1], "unavailable"):
        return "n/a"
    if side.get("error") or _get(side, *path[:-1], "error"):
        return "failed"
    if path[0] == "bf16" and _get(side, "bf16", "skipped"):
        return "skipped"
    if path[-1] == "peak_fraction":
        v = _get(side, *path)
        return "-" if v is None else f"{100 * v:.1f}%"
    runs = _get(side, *path[:-1], f"{path[-1]}_runs")
    if isinstance(runs, list) and len([v for v in runs if v is not None]) > 1:
        values = [v for v in runs if v is not None]
        return f"{_fmt(_get(side, *path))} ({_fmt(min(values))}-{_fmt(max(values))})"
    if path == ("budget", "valid_pair"):
        n, secs = _get(side, "budget", "validations"), _get(side, "budget", "valid_seconds")
        return "-" if n is None else f"{n} / {_fmt(secs)}"
    if path == ("bf16", "dev_bleu_pair"):
        a, b = _get(side, "bf16", "fp32_dev_bleu"), _get(side, "bf16", "dev_bleu")
        return "-" if a is None and b is None else f"{_fmt(a)} / {_fmt(b)}"
    return _fmt(_get(side, *path))


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 1 else f"{v:,.1f}" if abs(v) < 1000 else f"{v:,.0f}"
    return str(v)


def render(results: dict) -> str:
    """A plain-text table per model, then the targets; for stderr."""
    machine, peak = results["machine"], results["matmul_peak_gflops"]
    method = results.get("matmul_peak_method", "best of 10 runs of a 1024 x 1024 @ 1024 x 1024 matmul")
    repeats = results.get("settings", {}).get("repeats", 1)
    lines = [f"machine: {machine['cpu']}, {machine['threads']} threads, torch {machine['torch']}, {machine['date']}",
             f"matmul peak GFLOP/s: fp32 {peak.get('fp32')}, bf16 {peak.get('bf16')} ({method})",
             f"repeats: {repeats} per side, interleaved; figures with a range are medians (min-max)"]
    if results.get("bf16_skipped"):
        lines.append(f"bf16 training run skipped: {results['bf16_skipped']}")
    for model, m in results["models"].items():
        ours, peer = m.get("seq2attn", {}), m.get("joeynmt", {})
        lines += ["", f"== {model}" + (f"  (seq2attn: {ours['unavailable'][:90]})" if ours.get("unavailable") else ""),
                  f"{'figure':36} {'seq2attn':>24} {'JoeyNMT':>24} {'ratio':>8}"]
        if peer.get("same_run_as"):
            lines.append(f"(JoeyNMT: its run measured for the {peer['same_run_as']} row)")
        for label, path in ROWS:
            r = _ratio_cell(ours, peer, path)
            lines.append(f"{label:36} {_cell(ours, path):>24} {_cell(peer, path) if peer else '-':>24} {r:>8}")
        lines.append("targets:")
        for t in m.get("targets", []):
            mark = "pass" if t["passed"] else "miss" if t["passed"] is False else "n/a"
            lines.append(f"  [{mark:4}] {t['name']}: {_fmt(t['value'])} (goal {t['goal']})")
    return "\n".join(lines)


def _ratio_cell(ours: dict, peer: dict, path: tuple[str, ...]) -> str:
    if not peer or ours.get("unavailable") or peer.get("unavailable") or path[-1] in ("dev_bleu_pair", "steps",
                                                                                      "valid_pair"):
        return ""
    if path[-1] in ("bleu", "peak_fraction"):
        return ""
    r = ratio(_get(ours, *path), _get(peer, *path))
    return "-" if r is None else f"{r:.2f}x"


def judge(model: str, entry: dict) -> dict:
    """``entry``'s ratios and targets, (re)computed from its two sides' figures."""
    ours, peer = entry.get("seq2attn", {}), entry.get("joeynmt", {})
    entry["ratios"] = ratios(ours, peer)
    entry["targets"] = as_json(targets(model, ours, peer, entry["ratios"]))
    return entry


def rederive(results: dict) -> dict:
    """The ratios and targets of every model again, from the figures (today's thresholds)."""
    for model, entry in results["models"].items():
        judge(model, entry)
    return results


def markdown(results: dict) -> str:
    """One markdown table, a column group per model: seq2attn, JoeyNMT (left out where it is the
    run of an earlier column group), ratio; for the READMEs."""
    head, rule, cols = ["figure"], ["---"], []
    for model, m in results["models"].items():
        ours, peer = m.get("seq2attn", {}), m.get("joeynmt", {})
        shared = peer.get("same_run_as") in results["models"]
        head += [f"{model}: seq2attn", *([] if shared else ["JoeyNMT"]), "ratio"]
        rule += ["---:"] * (2 if shared else 3)
        cols.append((ours, peer, shared))
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(rule) + "|"]
    for label, path in ROWS:
        cells = [label.strip()]
        for ours, peer, shared in cols:
            cells += [_cell(ours, path), *([] if shared else [_cell(peer, path) if peer else "-"]),
                      _ratio_cell(ours, peer, path)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.report RESULTS.json [MORE.json ...]``: the stderr table and the
    markdown table again, the models of several files (parts of one full run) side by side."""
    import argparse
    import json
    import sys
    from pathlib import Path

    p = argparse.ArgumentParser(prog="python -m benchmarks.report", description=main.__doc__.split("\n\n")[0])
    p.add_argument("results", nargs="+", type=Path)
    args = p.parse_args(argv)
    merged: dict | None = None
    for path in args.results:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            print(f"benchmarks.report: error: {path}: not a benchmarks.run results file ({e})", file=sys.stderr)
            return 2
        if not isinstance(data, dict) or not isinstance(data.get("models"), dict):
            print(f"benchmarks.report: error: {path}: not a benchmarks.run results file (no 'models')", file=sys.stderr)
            return 2
        if merged is None:
            merged = data
        else:
            merged["models"].update(data["models"])
    rederive(merged)
    print(render(merged))
    print()
    print(markdown(merged))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
