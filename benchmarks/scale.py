"""Corpora larger than memory: preprocessing speed and the peak RSS of training on a 5M-pair store.

    python -m benchmarks.scale --data-dir ../shared/corpora          # ~15 min on 1 core
    python -m benchmarks.scale --pairs 50000 --steps 20 --out /tmp/s.json   # a quick check

A seeded script builds a synthetic parallel corpus of ``--pairs`` pairs from the Multi30k de-en
training sentences (each pair is one Multi30k pair, or two joined, drawn at random; written under
--work, never committed). Both it and Multi30k alone are binarized with ``seq2attn preprocess``
(timed: pairs/s), then the same small GRU model trains ``--steps`` steps on each store. Every
command runs in its own process pinned to one core (``taskset -c 0``, train.threads=1, one tokenizer
thread), and its peak RSS is that process's ru_maxrss (benchmarks/common.py). The target: the big
store's training peak RSS is at most the Multi30k run's + 300 MiB.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
from pathlib import Path

from seq2attn.text.textfiles import read_lines

from . import common

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "scale.json"
MIB = 2**20
MODEL = ["tokenizer.kind=bpe", "tokenizer.vocab_size=8000", "model.backend=rnn", "model.emb_size=64",
         "model.hidden_size=128", "model.dec_hidden_size=128", "train.batch_tokens=2048"]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.scale", description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", type=Path, default=Path("../shared/corpora"))
    p.add_argument("--pairs", type=int, default=5_000_000, help="synthetic corpus size (default %(default)s)")
    p.add_argument("--steps", type=int, default=200, help="training steps per run (default %(default)s)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--work", type=Path, default=HERE / "work" / "scale")
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--train-only", action="store_true", help="reuse the stores of an earlier run (and its "
                   "preprocessing figures from --out); measure the training runs again")
    return p.parse_args(argv)


def synthetic(root: Path, out: Path, *, pairs: int, seed: int) -> tuple[Path, Path]:
    """``pairs`` pairs drawn from Multi30k train: one pair, or two joined, chosen by ``seed``."""
    src, tgt = read_lines(root / "train.de.gz"), read_lines(root / "train.en.gz")
    rng = random.Random(seed)
    n = len(src)
    out.mkdir(parents=True, exist_ok=True)
    paths = out / f"synthetic-{pairs}.de", out / f"synthetic-{pairs}.en"
    with open(paths[0], "w", encoding="utf-8") as fs, open(paths[1], "w", encoding="utf-8") as ft:
        for _ in range(pairs):
            a = rng.randrange(n)
            if rng.random() < 0.5:
                fs.write(src[a] + "\n")
                ft.write(tgt[a] + "\n")
            else:
                b = rng.randrange(n)
                fs.write(f"{src[a]} {src[b]}\n")
                ft.write(f"{tgt[a]} {tgt[b]}\n")
    return paths


def _preprocess(name, files, dev, store, sets, args, work, env) -> dict:
    pre = common.run_child(pinned(["preprocess", "--out", str(store), "--train", *files, "--dev", *dev,
                                   *sets, "--seed", str(args.seed)]),
                           log=work / "logs" / f"preprocess-{name}.log", env=env)
    common.check(pre, f"preprocess {name}")
    manifest = json.loads((store / "store.json").read_text())
    pairs = manifest["splits"]["train"]["pairs"] + manifest["splits"]["dev"]["pairs"]
    return {"train_pairs": manifest["splits"]["train"]["pairs"],
            "store_mib": round(sum(f.stat().st_size for f in store.iterdir()) / MIB, 1),
            "preprocess_s": round(pre.wall_s, 1), "preprocess_pairs_per_s": round(pairs / pre.wall_s),
            "preprocess_lines_per_s": round(2 * pairs / pre.wall_s),
            "preprocess_peak_rss_mib": round(pre.peak_rss_bytes / MIB)}


def pinned(args: list[str]) -> list[str]:
    base = [sys.executable, "-m", "seq2attn", *args]
    return ["taskset", "-c", "0", *base] if shutil.which("taskset") else base


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    root = common.find_multi30k(args.data_dir)
    work = args.work
    earlier = json.loads(args.out.read_text()) if args.train_only else None
    if not args.train_only:
        shutil.rmtree(work / "stores", ignore_errors=True)
    shutil.rmtree(work / "models", ignore_errors=True)
    big = synthetic(root, work, pairs=args.pairs, seed=args.seed) if not args.train_only else \
        (work / f"synthetic-{args.pairs}.de", work / f"synthetic-{args.pairs}.en")
    dev = [str(root / "val.de.gz"), str(root / "val.en.gz")]
    corpora = {"multi30k": [str(root / "train.de.gz"), str(root / "train.en.gz")],
               "synthetic": [str(p) for p in big]}
    env = common.thread_env(1, {**os.environ, "RAYON_RS_NUM_CPUS": "1"})
    sets = [a for s in MODEL for a in ("--set", s)]
    report = {"command": " ".join(["python -m benchmarks.scale", *(argv if argv is not None else sys.argv[1:])]),
              "machine": common.machine_info(1), "pinned": "taskset -c 0, train.threads=1, 1 tokenizer thread",
              "model": MODEL, "steps": args.steps, "runs": {}}
    for name, files in corpora.items():
        store = work / "stores" / name
        if earlier is not None:
            report["runs"][name] = {k: v for k, v in earlier["runs"][name].items() if not k.startswith("train_")
                                    or k == "train_pairs"}
            report["preprocess_command"] = earlier.get("preprocess_command", earlier["command"])
        else:
            report["runs"][name] = _preprocess(name, files, dev, store, sets, args, work, env)
        run = common.run_child(pinned(["train", "--data", str(store), "--out", str(work / "models" / name), *sets,
                                       "--set", f"train.max_steps={args.steps}", "--set", "train.threads=1",
                                       "--set", "train.validate_every=1000000", "--set", "data.dev_size=50",
                                       "--set", "train.attention_image=false", "--set", "train.log_every=50"]),
                               log=work / "logs" / f"train-{name}.log", env=env)
        common.check(run, f"train {name}")
        rows = [json.loads(x) for x in (work / "models" / name / "metrics.jsonl").read_text().splitlines()]
        report["runs"][name].update({
            "train_s": round(run.wall_s, 1), "train_peak_rss_mib": round(run.peak_rss_bytes / MIB),
            "train_tokens_per_s": [r["tokens_per_s"] for r in rows if r["kind"] == "train"],
        })
        print(json.dumps({name: report["runs"][name]}), flush=True)
    small, large = report["runs"]["multi30k"], report["runs"]["synthetic"]
    report["rss_growth_mib"] = large["train_peak_rss_mib"] - small["train_peak_rss_mib"]
    report["target"] = "synthetic train_peak_rss_mib <= multi30k train_peak_rss_mib + 300"
    report["target_met"] = report["rss_growth_mib"] <= 300
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0 if report["target_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
