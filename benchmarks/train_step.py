"""Training-step throughput on synthetic batches: what the loss fusion and the allocator setting buy.

    python -m benchmarks.train_step --threads 2

Each row trains the benchmark models (configs/seq2attn-{rnn,transformer}.yaml, 8,000-type joint
vocabulary) on random batches of 256 sentences x 16 source and 16 target tokens (4,096 target
tokens, no padding, no data loading), so it isolates the step itself: forward, loss, backward,
clipping, Adam. Rows differ in three settings, each in its own child process (the allocator setting
is process-wide):

* ``loss``: ``fused`` = seq2attn's training loss (``seq2attn.nn.loss.token_loss``: the vocabulary
  projection and cross-entropy chunked, the logits never whole); ``plain`` = logits, then
  ``F.cross_entropy`` (what seq2attn did before, and what most toolkits do);
* ``malloc``: ``kept`` = ``seq2attn.nn.runtime.keep_freed_memory()`` (what ``seq2attn train`` does);
  ``system`` = glibc's defaults (large blocks mmap'd and unmapped on every free);
* ``precision``: fp32, or bf16 autocast.

Prints a Markdown table (target tokens/s, fraction of the fp32 matmul peak, peak RSS) and writes
benchmarks/results/train_step.json. These are not the comparison figures (benchmarks.run measures
real Multi30k training side by side with JoeyNMT); they show where the step's time goes.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

from .common import machine_info, matmul_peak, thread_env
from .flops import Lengths, training_flops_per_token

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "train_step.json"
B, S, T, VOCAB = 256, 16, 16, 8000
# (backend, precision, loss, malloc): the step as it was, each change alone, both, and bf16
ROWS = [(backend, *setting) for backend in ("rnn", "transformer") for setting in (
    ("fp32", "plain", "system"), ("fp32", "plain", "kept"), ("fp32", "fused", "system"),
    ("fp32", "fused", "kept"), ("bf16", "fused", "kept"))]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.train_step", description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=2, help="torch threads (default: %(default)s)")
    p.add_argument("--steps", type=int, default=6, help="timed steps per row, after 2 warm-up steps")
    p.add_argument("--models", default="rnn,transformer", help="comma-separated: rnn, transformer")
    p.add_argument("--out", type=Path, default=RESULTS, help="JSON report (default: %(default)s)")
    p.add_argument("--profile", choices=("rnn", "transformer"), metavar="BACKEND",
                   help="instead of the table: torch.profiler over --steps fp32 steps of BACKEND as seq2attn trains "
                        "it (fused loss, freed memory kept), the operators by self CPU time")
    p.add_argument("--one", nargs=4, metavar=("BACKEND", "PRECISION", "LOSS", "MALLOC"), help=argparse.SUPPRESS)
    return p.parse_args(argv)


def model_config(backend: str):
    from seq2attn.config import resolve_config

    return resolve_config(file=HERE / "configs" / f"seq2attn-{backend}.yaml")


def one_row(backend: str, precision: str, loss_kind: str, malloc: str, *, threads: int, steps: int,
            profile: bool = False) -> dict:
    """Runs in a child: time ``steps`` training steps with these settings (``profile``: under
    torch.profiler, whose operator table goes to stderr)."""
    if malloc == "kept":
        from seq2attn.nn.runtime import keep_freed_memory

        assert keep_freed_memory(), "glibc's mallopt is not available here"
    import torch

    from seq2attn.nn.loss import token_loss
    from seq2attn.nn.models import build_model
    from seq2attn.nn.runtime import autocast

    torch.manual_seed(0)
    torch.set_num_threads(threads)
    cfg = model_config(backend)
    model = build_model(cfg.model, src_vocab=VOCAB, tgt_vocab=VOCAB, joint=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    smoothing = cfg.train.label_smoothing

    def step() -> None:
        src = torch.randint(4, VOCAB, (B, S))
        tgt = torch.randint(4, VOCAB, (B, T + 1))
        with autocast(torch.device("cpu"), precision):
            out = model.features(src, torch.full((B,), S), tgt[:, :-1])
        loss = token_loss(out.hidden, model.output_layer, tgt[:, 1:], label_smoothing=smoothing,
                          precision=precision, fused=loss_kind == "fused")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

    for _ in range(2):
        step()
    profiler = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) if profile \
        else contextlib.nullcontext()
    with profiler as prof:
        start = time.perf_counter()
        for _ in range(steps):
            step()
        seconds = (time.perf_counter() - start) / steps
    if prof is not None:
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15), file=sys.stderr)
    return {"backend": backend, "precision": precision, "loss": loss_kind, "malloc": malloc,
            "ms_per_step": round(seconds * 1000, 1), "tokens_per_s": round(B * T / seconds, 1),
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.profile:
        print(json.dumps(one_row(args.profile, "fp32", "fused", "kept", threads=args.threads, steps=args.steps,
                                 profile=True)))
        return 0
    if args.one:
        print(json.dumps(one_row(*args.one, threads=args.threads, steps=args.steps)))
        return 0
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    peak = matmul_peak(threads=args.threads)
    rows = []
    for backend, precision, loss_kind, malloc in (r for r in ROWS if r[0] in models):
        cmd = [sys.executable, "-m", "benchmarks.train_step", "--threads", str(args.threads),
               "--steps", str(args.steps), "--one", backend, precision, loss_kind, malloc]
        env = thread_env(args.threads)
        env.pop("SEQ2ATTN_MALLOC", None)
        done = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env,
                              cwd=HERE.parent)
        if done.returncode != 0:
            print(f"benchmarks.train_step: {backend} {precision} {loss_kind} {malloc} failed:\n{done.stderr}",
                  file=sys.stderr)
            return 1
        row = json.loads(done.stdout.strip().splitlines()[-1])
        flops = training_flops_per_token(_model_dict(backend), vocab=VOCAB, lengths=Lengths(S, T))
        row["fp32_peak_fraction"] = round(row["tokens_per_s"] * flops / (peak["fp32"] * 1e9), 3)
        rows.append(row)
        print(f"{backend} {precision} {loss_kind} {malloc}: {row['tokens_per_s']:.0f} tok/s", file=sys.stderr)
    report = {"command": " ".join(["python -m benchmarks.train_step", *(argv if argv is not None else sys.argv[1:])]),
              "machine": machine_info(args.threads),
              "matmul_peak_gflops": peak,
              "batch": {"sentences": B, "src_len": S, "tgt_len": T, "vocab": VOCAB}, "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(table(rows))
    return 0


def _model_dict(backend: str) -> dict:
    from seq2attn.config import to_dict

    return to_dict(model_config(backend))["model"]


def table(rows: list[dict]) -> str:
    lines = ["| model | precision | loss | malloc | ms / step | target tok/s | fp32 peak | peak RSS |",
             "|---|---|---|---|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['backend']} | {r['precision']} | {r['loss']} | {r['malloc']} | {r['ms_per_step']:.0f} | "
                     f"{r['tokens_per_s']:,.0f} | {100 * r['fp32_peak_fraction']:.0f}% | "
                     f"{r['peak_rss_mib'] / 1024:.2f} GiB |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
