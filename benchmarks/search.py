"""Issue 23, item 3: a dev-only search of recipe settings for a CPU budget, trained where it is fast.

What a budget of M CPU minutes buys is a number of steps, and what those steps learn does not
depend on the machine that takes them. So the search has two parts:

    # 1. on the CPU whose budget counts, quiet, the threads a user has: each candidate's steps per
    #    minute of training (validation excluded), from a short run of --probe-steps steps
    python -m benchmarks.search probe --candidates benchmarks/configs/search-de-en-transformer.yaml \\
        --data-dir ../shared/corpora --threads 2 --out benchmarks/results/search/<date>-probe.json
    # 2. anywhere (a GPU machine: all candidates at once, one process each): each candidate trains
    #    exactly the steps it would make in --minutes on that CPU, with the budget schedule decaying
    #    over those steps (train.max_steps; max_minutes off), the preset's averaging and tune_alpha
    python -m benchmarks.search run --candidates ... --probe PROBE.json --minutes 120 --device cuda \\
        --data-dir ../shared/corpora --out benchmarks/results/search/<date>-search.json
    python -m benchmarks.search table SEARCH.json            # the dev table (docs/recipes.md)

Everything is scored on dev (the 1,014 sentences of Multi30k's val): test_2016_flickr is never
decoded here. A candidate is the ``--corpus multi30k`` preset for ``base.backend`` plus its own
``--set`` overrides; the candidates file is YAML::

    base: {src: de, tgt: en, backend: transformer}
    candidates:
      preset: []
      dropout-0.2: [model.dropout=0.2]
      d192: [model.emb_size=192, model.ff_size=384]

The step count is the probe's median training tokens/s over the candidate's real target tokens per
step: a model that is slower on the CPU gets fewer steps, as it would in a real budgeted run.
Candidates whose overrides do not change a step's cost (``COST_NEUTRAL``) share one pooled rate.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import shutil
import statistics
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

from seq2attn.fsutil import atomic_write_text

from . import seq2attn_side as s2a
from .common import Child, machine_info, prepare_data, run_child, thread_env

HERE = Path(__file__).resolve().parent
_PARAMS = re.compile(r"model: ([\d,]+) parameters")


def say(text: str) -> None:
    sys.stderr.write(text + "\n")  # one write: candidates trained in parallel threads report whole lines
    sys.stderr.flush()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.search", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("probe", "run"):
        s = sub.add_parser(name)
        s.add_argument("--candidates", type=Path, required=True, help="YAML: base and candidates (see above)")
        s.add_argument("--only", help="comma-separated candidate names (default: all)")
        s.add_argument("--data-dir", type=Path, default=Path("../shared/corpora"))
        s.add_argument("--work", type=Path, default=HERE / "work" / "search", help="models and logs")
        s.add_argument("--out", type=Path, required=True, help="the JSON written")
        s.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                       help="added to every candidate, before its own")
    probe, run = sub.choices["probe"], sub.choices["run"]
    probe.add_argument("--threads", type=int, default=2)
    probe.add_argument("--probe-steps", type=int, default=60, help="steps per candidate (the first window is dropped)")
    probe.add_argument("--log-every", type=int, default=10)
    run.add_argument("--probe", type=Path, help="the probe's JSON (else --steps)")
    run.add_argument("--minutes", type=float, default=120, help="the CPU budget the steps stand for")
    run.add_argument("--steps", type=int, help="the same step count for every candidate, instead of --probe")
    run.add_argument("--device", default="cuda")
    run.add_argument("--threads", type=int, default=1, help="CPU threads of each candidate's process")
    run.add_argument("--parallel", type=int, default=0, help="candidates at once (0: all)")
    table = sub.add_parser("table")
    table.add_argument("results", type=Path, nargs="+")
    return p.parse_args(argv)


def load_candidates(path: Path, only: str | None) -> tuple[dict, dict[str, list[str]]]:
    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise ValueError(f"{path}: {e}") from e
    if not isinstance(spec, dict) or not isinstance(spec.get("base"), dict) or not isinstance(spec.get("candidates"), dict):
        raise ValueError(f"{path}: needs a 'base' mapping (src, tgt, backend) and a 'candidates' mapping")  # noqa: TRY004
    base = {"src": "de", "tgt": "en", "backend": "transformer", **spec["base"]}
    cands = {str(k): [str(s) for s in (v or [])] for k, v in spec["candidates"].items()}
    if only:
        names = [n.strip() for n in only.split(",") if n.strip()]
        unknown = [n for n in names if n not in cands]
        if unknown:
            raise ValueError(f"--only {','.join(unknown)}: not in {path} (it has: {', '.join(cands)})")
        cands = {n: cands[n] for n in names}
    return base, cands


def preset_config(base: dict, dest: Path) -> Path:
    """The ``--corpus multi30k`` preset for ``base["backend"]`` as a config file: the candidates train
    on the prepared plain-text files with it (what ``--corpus multi30k`` would give, without its
    download and checksum step, so a stand-in corpus works too)."""
    from seq2attn.text.corpora import CORPORA

    cfg = CORPORA["multi30k"].preset_for(base["backend"])
    cfg.setdefault("model", {})["backend"] = base["backend"]
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return dest


def train_cmd(setup: dict, out: Path, device: str, sets: list[str]) -> list[str]:
    src, tgt, d = setup["src"], setup["tgt"], setup["data"]
    cmd = [*s2a.S2A, "train", "-c", str(setup["config"]), "--out", str(out), "--device", device,
           "--train", f"{d['train']}.{src}", f"{d['train']}.{tgt}", "--dev", f"{d['dev']}.{src}", f"{d['dev']}.{tgt}"]
    for s in sets:
        cmd += ["--set", s]
    return cmd


def prepare(args: argparse.Namespace, base: dict) -> dict:
    try:
        data = prepare_data(args.data_dir, args.work / "data", src=base["src"], tgt=base["tgt"],
                            limits={"train": None, "dev": None, "test": 1})
    except FileNotFoundError as e:
        raise ValueError(str(e)) from e
    return {**base, "data": data, "config": preset_config(base, args.work / "preset.yaml")}


def fresh(model_dir: Path) -> Path:
    """A candidate's model directory, emptied: ``seq2attn train`` refuses an existing run."""
    shutil.rmtree(model_dir, ignore_errors=True)
    model_dir.parent.mkdir(parents=True, exist_ok=True)
    return model_dir


def metrics(model_dir: Path) -> list[dict]:
    return s2a.metrics(model_dir) if (model_dir / "metrics.jsonl").is_file() else []


def parameters(log: Path) -> int | None:
    found = _PARAMS.search(log.read_text(errors="replace")) if log.is_file() else None
    return int(found.group(1).replace(",", "")) if found else None


def steps_per_minute(rows: list[dict]) -> dict:
    """Training speed from the probe's logging windows, as the benchmark reads it
    (``seq2attn_side.train_rates``): the first window (start-up) and any window right after a
    validation left out."""
    first = next((r["step"] for r in rows if r.get("kind") == "train"), 0)
    rates = s2a.train_rates(rows, first=first, last=s2a.last_step(rows))
    per_step = s2a.target_tokens_per_step(rows)
    if not rates or not per_step:
        raise ValueError("the probe logged no training window after the first; give more --probe-steps")
    tok_s = statistics.median(rates)
    return {"tokens_per_s": round(tok_s, 1), "target_tokens_per_step": per_step,
            "steps_per_minute": round(tok_s * 60 / per_step, 2), "windows": len(rates)}


def probe(args: argparse.Namespace, base: dict, cands: dict[str, list[str]]) -> dict:
    setup = prepare(args, base)
    results = {"command": args.command, "base": base,
               "machine": machine_info(args.threads), "probe_steps": args.probe_steps, "candidates": {}}
    for name, sets in cands.items():
        say(f"[{name}] probe: {args.probe_steps} steps on {args.threads} thread(s) ...")
        out = fresh(args.work / "probe" / name)
        # the probe's own settings last: a candidate's or --set's validate_every must not cut windows
        sets_all = [*args.sets, *sets, f"train.threads={args.threads}", f"train.max_steps={args.probe_steps}",
                    "train.max_minutes=null", f"train.log_every={args.log_every}",
                    f"train.validate_every={10 * args.probe_steps}", "data.dev_size=20", "train.tune_alpha=false",
                    "train.average_last=null"]
        child = run_child(train_cmd(setup, out, "cpu", sets_all),
                          log=args.work / "logs" / f"probe-{name}.log", env=thread_env(args.threads))
        entry: dict = {"sets": sets}
        try:
            if child.returncode:
                raise ValueError(f"seq2attn train exited {child.returncode}; see {child.log}")
            entry.update(steps_per_minute(metrics(out)), parameters=parameters(child.log))
        except ValueError as e:
            entry["error"] = str(e)
            say(f"[{name}] FAILED: {e}")
        results["candidates"][name] = entry
        write(args.out, results)
    return results


# Settings that change what a step learns, not what it costs. Candidates that change only these run
# at one pooled rate, the median of their probes (the preset's included): on 2026-12-04 ten such
# Transformer candidates, the preset among them, probed at 74.0-86.4 steps/min, so their own figures
# would have handed some of them up to 17% more steps than others for the same minutes.
COST_NEUTRAL = frozenset({"train.lr", "train.warmup_steps", "train.label_smoothing", "train.schedule",
                          "train.budget_decay", "train.min_lr", "train.clip_norm", "train.adam_betas",
                          "model.dropout", "model.attention_dropout", "model.activation_dropout",
                          "model.norm",  # post-norm moves each layer norm; a pre-norm stack adds one at its end
                          "train.seed"})


def cost_neutral(sets: list[str]) -> bool:
    """True when every override is in COST_NEUTRAL (a dropout of 0 is not: it skips the masks)."""
    for s in sets:
        key, _, value = s.partition("=")
        if key not in COST_NEUTRAL or (key.endswith("dropout") and _is_zero(value)):
            return False
    return True


def _is_zero(value: str) -> bool:
    try:
        return float(value) == 0
    except ValueError:
        return False


def step_plan(cands: dict[str, list[str]], speed: dict, minutes: float) -> dict[str, dict]:
    """Each candidate's steps for ``minutes`` of the probed CPU, the rate they come from and whether
    that rate is the pooled one. The pool is every probed candidate that costs what the preset costs
    (its probe's own ``sets``), so ``--only`` a few plans the steps the whole file would, and a
    cost-neutral candidate added after the probe takes the pooled rate without a probe of its own."""
    def probed_neutral(name: str, figures: dict) -> bool:  # by the probe's sets, else the file's
        sets = figures.get("sets", cands.get(name))
        return "steps_per_minute" in figures and sets is not None and cost_neutral(sets)

    pool = [v["steps_per_minute"] for n, v in speed.items() if probed_neutral(n, v)]
    plan = {}
    for name, sets in cands.items():
        pooled = len(pool) > 1 and cost_neutral(sets)
        if not pooled and "steps_per_minute" not in speed.get(name, {}):
            raise ValueError(f"no probe figure for candidate {name!r}")
        rate = statistics.median(pool) if pooled else speed[name]["steps_per_minute"]
        plan[name] = {"steps": max(1, round(rate * minutes)), "rate": round(rate, 2), "pooled": pooled}
    return plan


def run(args: argparse.Namespace, base: dict, cands: dict[str, list[str]]) -> dict:
    if (args.probe is None) == (args.steps is None):
        raise ValueError("give --probe PROBE.json or --steps N")
    try:
        speed = json.loads(args.probe.read_text(encoding="utf-8"))["candidates"] if args.probe else {}
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"--probe {args.probe}: not a probe result ({e})") from e
    try:
        plan = {name: {"steps": args.steps} for name in cands} if args.steps is not None else \
            step_plan(cands, speed, args.minutes)
    except ValueError as e:
        raise ValueError(f"{args.probe}: {e}") from e
    setup = prepare(args, base)
    results = {"command": args.command, "base": base,
               "machine": machine_info(args.threads), "device": args.device, "minutes": args.minutes,
               "probe": str(args.probe) if args.probe else None, "candidates": {}}

    def train(name: str) -> Child:
        sets_all = [f"train.threads={args.threads}", f"train.max_steps={plan[name]['steps']}", "train.max_minutes=null",
                    *args.sets, *cands[name]]
        say(f"[{name}] {plan[name]['steps']} steps on {args.device} ...")
        return run_child(train_cmd(setup, fresh(args.work / "run" / name), args.device, sets_all),
                         log=args.work / "logs" / f"run-{name}.log", env=thread_env(args.threads))

    with ThreadPoolExecutor(args.parallel or len(cands)) as pool:
        children = {name: pool.submit(train, name) for name in cands}
        for name, future in children.items():  # in the file's order, each written as it is known
            child = future.result()
            entry = {"sets": cands[name], "steps_planned": plan[name]["steps"], "parameters": parameters(child.log)}
            if name in speed:
                entry.update(cpu_steps_per_minute=plan[name]["rate"], pooled_rate=plan[name]["pooled"],
                             probed_steps_per_minute=speed[name]["steps_per_minute"])
            rows = metrics(args.work / "run" / name)
            entry.update(summary(rows))  # a candidate stopped early keeps the curve it made
            if child.returncode != 0:
                entry["error"] = (f"seq2attn train exited {child.returncode} after logged step {entry['steps']}; "
                                  f"see {child.log}")
            results["candidates"][name] = entry
            write(args.out, results)
    return results


def summary(rows: list[dict]) -> dict:
    """Dev figures of a finished run: the best validation, the averaged weights, the tuned alpha."""
    valid = [r for r in rows if r.get("kind") == "valid"]
    best = max(valid, key=lambda r: r["bleu"]) if valid else None
    avg = next((r for r in rows if r.get("kind") == "averaged"), None)
    alpha = next((r for r in reversed(rows) if r.get("kind") == "alpha"), None)
    out = {"steps": s2a.last_step(rows),
           "dev_greedy_best": best and round(best["bleu"], 2), "best_step": best and best["step"],
           "dev_loss_best": best and round(best["loss"], 4), "dev_greedy_last": valid[-1]["bleu"] if valid else None,
           "dev_greedy_averaged": avg and avg.get("dev_bleu"),
           "curve": [{"step": r["step"], "bleu": r["bleu"], "loss": r["loss"]} for r in valid]}
    if alpha:
        by = alpha["dev_bleu_by_alpha"]
        out.update(alpha=alpha["alpha"], weights=alpha.get("weights"), dev_beam=by.get(f"{alpha['alpha']:g}"),
                   dev_beam_alpha0=by.get("0"))
    return out


def render(results: list[dict]) -> str:
    head = ["candidate", "overrides", "params", "CPU steps/min", "steps", "dev greedy (best)", "averaged",
            "dev beam 5 (alpha)", "dev loss"]
    lines = [" | ".join(head), " | ".join("---" for _ in head)]
    for res in results:
        for name, c in res["candidates"].items():
            fmt = lambda v, f="{:.2f}": "-" if v is None else f.format(v)
            if "error" in c:  # what it reached before it stopped, marked as such
                lines.append(" | ".join([name, " ".join(c["sets"]) or "(preset)", fmt(c.get("parameters"), "{:,}"), "",
                                         f"stopped at {fmt(c.get('steps'), '{:,}')}", fmt(c.get("dev_greedy_best")),
                                         "", "", fmt(c.get("dev_loss_best"), "{:.3f}")]))
                continue
            lines.append(" | ".join([
                name, " ".join(c["sets"]) or "(preset)", fmt(c.get("parameters"), "{:,}"),
                fmt(c.get("cpu_steps_per_minute", c.get("steps_per_minute")), "{:.1f}"), fmt(c.get("steps"), "{:,}"),
                fmt(c.get("dev_greedy_best")), fmt(c.get("dev_greedy_averaged")),
                "-" if c.get("dev_beam") is None else f"{c['dev_beam']:.2f} ({c['alpha']:g})",
                fmt(c.get("dev_loss_best"), "{:.3f}")]))
    return "\n".join(lines)


def write(path: Path, results: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(results, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.command = " ".join(["python -m benchmarks.search", *(argv if argv is not None else sys.argv[1:])])
    if args.cmd == "table":
        try:
            say(render([json.loads(p.read_text()) for p in args.results]))
        except (OSError, ValueError, KeyError) as e:
            say(f"search: error: {e}")
            return 2
        return 0
    try:
        base, cands = load_candidates(args.candidates, args.only)
        args.work = args.work.resolve()
        res = probe(args, base, cands) if args.cmd == "probe" else run(args, base, cands)
    except ValueError as e:
        say(f"search: error: {e}")
        return 2
    say(render([res]))
    say(f"results: {args.out} ({dt.datetime.now(dt.timezone.utc):%H:%M} UTC)")
    return 0 if all("error" not in c for c in res["candidates"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
