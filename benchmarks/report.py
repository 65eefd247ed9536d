"""Ratios (seq2attn / JoeyNMT), the issue's targets marked pass / miss, and the stderr table.

Every ratio is taken between figures measured in the same run on the same machine: absolute
seconds drift between runs on a shared machine, ratios much less. Where both sides were measured
R times, interleaved, a ratio is the median of the R paired ratios (repeat r of seq2attn over
repeat r of JoeyNMT), shown with their range; a target passes only if that median does. Every
derived figure (the paired ratios, sentences/s, the fraction of the matmul peak per repeat, the
validations after the budget) is computed here from a results file's figures, so older files
render with today's rules (what they lack shows as "-").
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass
from typing import Any

# (name, how to read it, threshold per model: rnn / transformer)
BEAM_TARGET = {"rnn": 3.0, "rnn-luong": 3.0, "transformer": 5.0}
HEADLINE = ("greedy", "beam5")  # the decode keys the targets read; others are secondary (e.g. greedy_cap100)


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


def paired(ours: list, peer: list) -> list[float]:
    """Repeat r of one side over repeat r of the other, for every r where both were measured."""
    return [a / b for a, b in zip(ours, peer) if a is not None and b is not None and b != 0]


def paired_ratio(ours: dict, peer: dict, path: tuple[str, ...], peer_path: tuple[str, ...] | None = None) -> dict | None:
    """The median of the paired repeat ratios with their range (``runs``: each pair's ratio), where
    both sides hold as many repeats (``*_runs``); else the ratio of the two figures, as one value."""
    peer_path = peer_path or path
    a, b = _get(ours, *path[:-1], f"{path[-1]}_runs"), _get(peer, *peer_path[:-1], f"{peer_path[-1]}_runs")
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b) and paired(a, b):
        values = paired(a, b)
        return {"median": round(statistics.median(values), 2), "min": round(min(values), 2),
                "max": round(max(values), 2), "runs": [round(v, 3) for v in values]}
    r = ratio(_get(ours, *path), _get(peer, *peer_path))
    return None if r is None else {"median": r, "min": r, "max": r, "runs": [r]}


def _searches(ours: dict, peer: dict) -> list[str]:
    """The decode keys of either side, the headline ones first."""
    keys = [k for side in (ours, peer) for k, v in (_get(side, "decode") or {}).items() if isinstance(v, dict)]
    return [*HEADLINE, *sorted(set(keys) - set(HEADLINE))]


# ratio name -> (seq2attn's figure, JoeyNMT's figure it is divided by)
EQUAL = ("train_equal_padding",)
TRAIN_RATIOS = {
    "train_tokens_per_s_fp32": (("train", "tokens_per_s"), None),
    "train_sentences_per_s_fp32": (("train", "sentences_per_s"), None),
    "train_tokens_per_s_fp32_equal_padding": ((*EQUAL, "tokens_per_s"), ("train", "tokens_per_s")),
    "train_sentences_per_s_fp32_equal_padding": ((*EQUAL, "sentences_per_s"), ("train", "sentences_per_s")),
    "train_tokens_per_s_bf16": (("bf16", "tokens_per_s"), ("train", "tokens_per_s")),
    "train_peak_rss": (("train", "peak_rss_gib"), None),
    "train_peak_rss_equal_padding": ((*EQUAL, "peak_rss_gib"), ("train", "peak_rss_gib")),
}


def paired_ratios(ours: dict, peer: dict) -> dict[str, dict | None]:
    """Every ratio as ``paired_ratio`` gives it."""
    out = {name: paired_ratio(ours, peer, a, b) for name, (a, b) in TRAIN_RATIOS.items()}
    for search in _searches(ours, peer):
        for unit in ("sent", "words"):
            out[f"decode_{unit}_per_s_{search}"] = paired_ratio(ours, peer, ("decode", search, f"{unit}_per_s"))
    return out


def ratios(ours: dict, peer: dict) -> dict[str, float | None]:
    """Each ratio's value: the median of its paired repeat ratios (the ratio of the two figures
    where a side has one run)."""
    derive(ours)
    derive(peer)
    r = {name: None if v is None else v["median"] for name, v in paired_ratios(ours, peer).items()}
    r["train_tokens_per_s_bf16_vs_fp32"] = ratio(_get(ours, "bf16", "tokens_per_s"), _fp32_beside_bf16(ours))
    r["decode_peak_rss"] = ratio(_decode_rss(ours), _decode_rss(peer))
    return r


def _fp32_beside_bf16(ours: dict) -> float | None:
    """The fp32 tokens/s the bf16 run is compared with: repeat 1's window, measured in the budget
    run just before the (single) bf16 run, so that the machine's drift over the later repeats does
    not enter the ratio; the median where a file has no per-repeat figures."""
    runs = _get(ours, "train", "tokens_per_s_runs")
    return runs[0] if runs else _get(ours, "train", "tokens_per_s")


def derive(side: dict) -> dict:
    """A side's derived figures, in place: training sentences/s (tokens/s over the side's target
    pieces per sentence, EOS included: the two tokenizers cut sentences into different numbers of
    pieces) per run and their median, and the fraction of the matmul peak per repeat."""
    pieces = _get(side, "target_pieces_per_sentence")
    for key in ("train", "train_equal_padding"):
        train = _get(side, key)
        if not isinstance(train, dict):
            continue
        runs = train.get("tokens_per_s_runs")
        if pieces and isinstance(runs, list):
            train["sentences_per_s_runs"] = [None if v is None else round(v / pieces, 2) for v in runs]
            values = [v for v in train["sentences_per_s_runs"] if v is not None]
            train["sentences_per_s"] = round(statistics.median(values), 2) if values else None
        if key == "train" and "matmul_peak_fp32_runs" in train:
            train["peak_fraction"] = peak_fraction(train)
    return side


def peak_fraction(train: dict) -> float | None:
    """The median over the repeats of tokens/s x training FLOPs per target token / the fp32 matmul
    peak measured just before that repeat (``matmul_peak_fp32_runs``); a file without per-repeat
    peaks keeps the fraction it has (against the run's one peak)."""
    fpt, runs, peaks = train.get("flops_per_token"), train.get("tokens_per_s_runs"), train.get("matmul_peak_fp32_runs")
    if not fpt or not isinstance(runs, list) or not isinstance(peaks, list) or len(runs) != len(peaks):
        return train.get("peak_fraction")
    values = [tps * fpt / (peak * 1e9) for tps, peak in zip(runs, peaks) if tps is not None and peak]
    return round(statistics.median(values), 3) if values else None


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
@dataclass(frozen=True)
class Row:
    label: str
    path: tuple[str, ...]  # into seq2attn's figures
    peer: tuple[str, ...] | None = None  # into JoeyNMT's, where it differs (equal padding: its own batches)
    ratio: bool = True


ROWS = [
    Row("params (M)", ("params_m",)),
    Row("train tok/s fp32, as shipped", ("train", "tokens_per_s")),
    Row("train sent/s fp32, as shipped", ("train", "sentences_per_s")),
    Row("  fraction of fp32 matmul peak", ("train", "peak_fraction"), ratio=False),
    Row("  fp32 matmul peak before each repeat", ("train", "matmul_peak_fp32_runs"), ratio=False),
    Row("train tok/s fp32, equal padding", (*EQUAL, "tokens_per_s"), ("train", "tokens_per_s")),
    Row("train sent/s fp32, equal padding", (*EQUAL, "sentences_per_s"), ("train", "sentences_per_s")),
    Row("  batch budget (padded tokens), equal padding", (*EQUAL, "batch_tokens"), ("budget", "batch", "batch_tokens")),
    Row("  real target tokens per step, equal padding", (*EQUAL, "target_tokens_per_step"),
        ("budget", "target_tokens_per_step")),
    Row("  target pieces per sentence", ("target_pieces_per_sentence",)),
    Row("train tok/s bf16", ("bf16", "tokens_per_s")),
    Row("  fraction of bf16 matmul peak", ("bf16", "peak_fraction"), ratio=False),
    Row("dev BLEU fp32 / bf16 at same step", ("bf16", "dev_bleu_pair"), ratio=False),
    Row("budget steps", ("budget", "steps"), ratio=False),
    Row("  batch budget (padded tokens)", ("budget", "batch", "batch_tokens")),
    Row("  real target tokens per step", ("budget", "target_tokens_per_step")),
    Row("  validations / seconds", ("budget", "valid_pair"), ratio=False),
    Row("decoded weights", ("decode", "greedy", "weights"), ratio=False),
    Row("test BLEU greedy", ("decode", "greedy", "bleu"), ratio=False),
    Row("test BLEU beam 5", ("decode", "beam5", "bleu"), ratio=False),
    Row("decode sent/s greedy", ("decode", "greedy", "sent_per_s")),
    Row("decode sent/s beam 5", ("decode", "beam5", "sent_per_s")),
    Row("decode words/s greedy", ("decode", "greedy", "words_per_s")),
    Row("decode words/s beam 5", ("decode", "beam5", "words_per_s")),
    Row("peak RSS train (GiB), as shipped", ("train", "peak_rss_gib")),
    Row("peak RSS train (GiB), equal padding", (*EQUAL, "peak_rss_gib"), ("train", "peak_rss_gib")),
    Row("peak RSS decode greedy (GiB)", ("decode", "greedy", "peak_rss_gib")),
    Row("peak RSS decode beam 5 (GiB)", ("decode", "beam5", "peak_rss_gib")),
]


def length_rule(results: dict) -> str | None:
    """The headline decoding's length rule: None for each toolkit's own, else the shared cap
    (files from before issue 27 decoded at --max-output-length 100; before issue 13, own rules)."""
    cap = results.get("settings", {}).get("max_output_length")
    return f"cap {cap}" if cap else None


def rows(results: dict) -> list[Row]:
    """The table's rows for these results: the headline decoding labelled with its length rule
    where it is a shared cap, then each secondary search (``greedy_cap100``, ...) as found; a row
    no model has a figure for is left out (an older file shows what it holds)."""
    rule = length_rule(results)
    out = [Row(f"{r.label}, {rule}", r.path, r.peer, r.ratio) if rule and r.path[0] == "decode"
           and r.path[-1] != "weights" else r for r in ROWS]
    sides = [(m.get("seq2attn", {}), m.get("joeynmt", {})) for m in results["models"].values()]
    order = lambda key: (key.partition("_cap")[2], [*HEADLINE, key].index(key.partition("_cap")[0]), key)
    extra = sorted({k for ours, peer in sides for k in _searches(ours, peer)} - set(HEADLINE), key=order)
    for key in extra:
        base, _, cap = key.partition("_cap")
        name = "greedy" if base == "greedy" else base.replace("beam", "beam ")
        note = f"cap {cap}, secondary" if cap else "secondary"
        out += [Row(f"test BLEU {name}, {note}", ("decode", key, "bleu"), ratio=False),
                Row(f"decode sent/s {name}, {note}", ("decode", key, "sent_per_s")),
                Row(f"decode words/s {name}, {note}", ("decode", key, "words_per_s"))]

    def shown(row: Row) -> bool:  # a figure of seq2attn's, or of JoeyNMT's where the row is its own
        cells = [_cell(ours, row.path) for ours, _ in sides if ours]
        cells += [_cell(peer, row.path) for _, peer in sides if peer and row.peer is None]
        return any(c not in ("-", "n/a", "failed") for c in cells)

    return [row for row in out if shown(row)]


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
    if path[-1] == "matmul_peak_fp32_runs":
        v = _get(side, *path)
        return "-" if not v else ", ".join(_fmt(x) for x in v)
    runs = _get(side, *path[:-1], f"{path[-1]}_runs")
    if isinstance(runs, list) and len([v for v in runs if v is not None]) > 1:
        values = [v for v in runs if v is not None]
        return f"{_fmt(_get(side, *path))} ({_fmt(min(values))}-{_fmt(max(values))})"
    if path == ("budget", "valid_pair"):
        n, secs = _get(side, "budget", "validations"), _get(side, "budget", "valid_seconds")
        after = _get(side, "budget", "validations_after_budget")
        return "-" if n is None else f"{n} / {_fmt(secs)}" + (f" ({after} after the budget)" if after else "")
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


def _ratio_cell(ours: dict, peer: dict, row: Row) -> str:
    if not row.ratio or not peer or ours.get("unavailable") or peer.get("unavailable"):
        return ""
    r = paired_ratio(ours, peer, row.path, row.peer)
    if r is None:
        return "-"
    return f"{r['median']:.2f}x" + (f" ({r['min']:.2f}-{r['max']:.2f})" if len(r["runs"]) > 1 else "")


def notes(results: dict) -> list[str]:
    """What the table's rules are, for the lines above it."""
    rule = length_rule(results)
    settings = results.get("settings", {})
    out = [("ratios: seq2attn / JoeyNMT; where both sides have repeats, the median of the paired ratios (repeat r "
            "over repeat r, interleaved) and their range (min-max); a target passes only if that median does"),
           ("equal padding: seq2attn on batches of JoeyNMT's composition (random order, no bucketing) at JoeyNMT's "
            "padded budget, against JoeyNMT as shipped; sent/s: tokens/s over each side's target pieces per sentence"),
           "decoding: " + ("the headline rows under each toolkit's own length rule" if rule is None else
                           f"the headline rows with both toolkits capped at {settings['max_output_length']} output "
                           "tokens")
           + (f"; rows marked secondary with both capped at {settings['shared_cap']}" if settings.get("shared_cap")
              and rule is None else ""),
           "decoded weights: " + ({"last": "both toolkits' weights at the end of the budget",
                                   "best": "each toolkit's best by dev BLEU"}.get(settings.get("decode_weights"),
                                                                                "not recorded in this file"))]
    return out


def render(results: dict) -> str:
    """A plain-text table per model, then the targets; for stderr."""
    machine, peak = results["machine"], results["matmul_peak_gflops"]
    method = results.get("matmul_peak_method", "best of 10 runs of a 1024 x 1024 @ 1024 x 1024 matmul")
    repeats = results.get("settings", {}).get("repeats", 1)
    if len(results.get("parts", [])) > 1:
        where = ["parts (separate runs; ratios are taken within a part only):", *parts_lines(results)]
    else:
        where = [f"machine: {machine['cpu']}, {machine['threads']} threads, torch {machine['torch']}, {machine['date']}",
                 f"matmul peak GFLOP/s: fp32 {peak.get('fp32')}, bf16 {peak.get('bf16')} ({method})"]
    lines = [*where, f"repeats: {repeats} per side, interleaved; figures with a range are medians (min-max)",
             *notes(results)]
    if results.get("bf16_skipped"):
        lines.append(f"bf16 training run skipped: {results['bf16_skipped']}")
    table = rows(results)
    for model, m in results["models"].items():
        ours, peer = m.get("seq2attn", {}), m.get("joeynmt", {})
        lines += ["", f"== {model}" + (f"  (seq2attn: {ours['unavailable'][:90]})" if ours.get("unavailable") else ""),
                  f"{'figure':44} {'seq2attn':>24} {'JoeyNMT':>24} {'ratio':>18}"]
        if peer.get("same_run_as"):
            lines.append(f"(JoeyNMT: its run measured for the {peer['same_run_as']} row)")
        for row in table:
            theirs = _cell(peer, row.peer or row.path) if peer else "-"
            lines.append(f"{row.label:44} {_cell(ours, row.path):>24} {theirs:>24} {_ratio_cell(ours, peer, row):>18}")
        lines.append("targets:")
        for t in m.get("targets", []):
            mark = "pass" if t["passed"] else "miss" if t["passed"] is False else "n/a"
            lines.append(f"  [{mark:4}] {t['name']}: {_fmt(t['value'])} (goal {t['goal']})")
    return "\n".join(lines)


def judge(model: str, entry: dict, *, validate_every: int | None = None) -> dict:
    """``entry``'s derived figures, ratios and targets, (re)computed from its two sides' figures."""
    ours, peer = entry.get("seq2attn", {}), entry.get("joeynmt", {})
    for side in (ours, peer):
        _after_budget(side, validate_every)
    entry["ratios"] = ratios(ours, peer)
    entry["paired_ratios"] = paired_ratios(ours, peer)
    entry["targets"] = as_json(targets(model, ours, peer, entry["ratios"]))
    return entry


def _after_budget(side: dict, validate_every: int | None) -> None:
    """How many of a side's validations ran after its budget: one every ``validate_every`` steps
    fall inside it, the rest came after (seq2attn validates once more when its budget ends)."""
    budget = _get(side, "budget")
    every = _get(side, "budget", "validate_every") or validate_every
    if isinstance(budget, dict) and every and budget.get("validations") is not None and budget.get("steps"):
        budget["validations_after_budget"] = max(budget["validations"] - budget["steps"] // every, 0)


def rederive(results: dict) -> dict:
    """The ratios and targets of every model again, from the figures (today's thresholds)."""
    every = results.get("settings", {}).get("validate_every")
    for model, entry in results["models"].items():
        judge(model, entry, validate_every=every)
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
    for row in rows(results):
        cells = [row.label.strip()]
        for ours, peer, shared in cols:
            cells += [_cell(ours, row.path), *([] if shared else [_cell(peer, row.peer or row.path) if peer else "-"]),
                      _ratio_cell(ours, peer, row)]
        lines.append("| " + " | ".join(cells) + " |")
    if len(results.get("parts", [])) > 1:
        lines += ["", "Column groups from separate runs (ratios are taken within a run only):",
                  *(f"- {line}" for line in parts_lines(results))]
    return "\n".join(lines)


def part_of(results: dict, name: str) -> dict:
    """What one results file says about where and how its models were measured (report.main)."""
    return {"file": name, "models": list(results.get("models", {})), "machine": results.get("machine", {}),
            "matmul_peak_gflops": results.get("matmul_peak_gflops", {}), "settings": results.get("settings", {})}


def parts_lines(results: dict) -> list[str]:
    """A line per part of a merged table: its models, machine, starting matmul peak, and the
    settings in which it differs from the first part."""
    parts = results["parts"]
    first = parts[0]["settings"]
    out = []
    for part in parts:
        m, peak = part["machine"], part["matmul_peak_gflops"]
        differ = {k: v for k, v in part["settings"].items() if first.get(k) != v}
        out.append(f"{', '.join(part['models'])} ({part['file']}): {m.get('cpu', '?')}, {m.get('threads', '?')} threads, "
                   f"torch {m.get('torch', '?')}, {m.get('date', '?')}; matmul peak fp32 {peak.get('fp32')}, "
                   f"bf16 {peak.get('bf16')} GFLOP/s"
                   + ("; unlike the first part: " + ", ".join(f"{k} {v}" for k, v in differ.items()) if differ else ""))
    return out


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
        part = part_of(data, path.name)
        if merged is None:
            merged = data
            merged["parts"] = [part]
        else:
            merged["models"].update(data["models"])
            merged["parts"].append(part)
    rederive(merged)
    print(render(merged))
    print()
    print(markdown(merged))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
