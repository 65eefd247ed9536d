"""seq2attn side by side with JoeyNMT 2.3.0 on Multi30k de->en, in one run, on one machine.

    python -m benchmarks.run --data-dir ../shared/corpora            # full: the published table
    python -m benchmarks.run --data-dir ../shared/corpora --quick    # a few minutes, for development

Per model (RNN, Transformer) and toolkit: parameters; training target tokens/s (median logging
window between --warmup-steps and --warmup-steps + --measure-steps, validation excluded); bf16
training (seq2attn); decoding sentences/s and words/s on test_2016_flickr with greedy and beam 5;
peak RSS of each training and decoding process; test BLEU after the same --budget-min of training.
The table goes to stderr, every figure to a JSON file in benchmarks/results/. See README.md here.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from . import common, report
from . import peer_joeynmt as joey
from . import seq2attn_side as s2a
from .sides import (
    Setup,
    add_equal_padding_repeat,
    add_throughput_repeat,
    combine_repeats,
    decode_joey,
    decode_once_joey,
    decode_once_seq2attn,
    decode_seq2attn,
    equal_padding_budget,
    equal_padding_seq2attn,
    searches,
    startup_joey,
    startup_seq2attn,
    throughput_joey,
    throughput_seq2attn,
    train_joey,
    train_seq2attn,
)

HERE = Path(__file__).resolve().parent
MODELS = ("rnn", "rnn-luong", "transformer")
# the JoeyNMT run each seq2attn model is compared with: JoeyNMT's recurrent decoder is Luong-wired,
# so both seq2attn RNN rows (Bahdanau-wired, and Luong-wired to match it) face its one RNN run
PEER = {"rnn": "rnn", "rnn-luong": "rnn", "transformer": "transformer"}


@dataclass(frozen=True)
class Mode:
    budget_min: float
    warmup_steps: int
    measure_steps: int
    bf16_steps: int
    validate_every: int  # both toolkits' budget runs; a multiple of it must be bf16_steps
    test_limit: int | None


FULL = Mode(budget_min=20.0, warmup_steps=20, measure_steps=150, bf16_steps=200, validate_every=200, test_limit=None)
QUICK = Mode(budget_min=1.0, warmup_steps=5, measure_steps=20, bf16_steps=30, validate_every=30, test_limit=200)
# below this bf16 / fp32 matmul-peak ratio the CPU has no fast bf16 path (no AVX512-BF16 or AMX):
# torch emulates bf16 there and a training run of --bf16-steps takes many times its fp32 time
FAST_BF16_RATIO = 1.5


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", type=Path, default=Path("../shared/corpora"),
                   help="directory with multi30k/{train,val,test_2016_flickr}.{de,en}.gz (default: %(default)s)")
    p.add_argument("--quick", action="store_true", help="a few minutes in all: 1-min budgets, 200 test sentences")
    p.add_argument("--no-peer", action="store_true", help="seq2attn only (no JoeyNMT install or runs)")
    p.add_argument("--peer-only", action="store_true",
                   help="JoeyNMT only (e.g. to choose --joey-normalization; no seq2attn runs)")
    p.add_argument("--models", default=",".join(MODELS), help=f"comma-separated: {', '.join(MODELS)}")
    p.add_argument("--threads", type=int, default=2, help="CPU threads for every measured process")
    p.add_argument("--budget-min", type=float, help="wall-clock training budget per toolkit and model "
                   f"(default {FULL.budget_min:g}; quick {QUICK.budget_min:g})")
    p.add_argument("--max-steps", type=int, help="also stop budget runs after this many steps (smoke tests)")
    p.add_argument("--warmup-steps", type=int, help="training steps left out of the throughput figure")
    p.add_argument("--measure-steps", type=int, help="training steps the throughput figure covers")
    p.add_argument("--bf16-steps", type=int, help="steps of the bf16 run; dev BLEU of fp32 and bf16 compared there "
                   "(a multiple of --validate-every)")
    p.add_argument("--bf16", choices=("auto", "on", "off"), default="auto",
                   help=f"seq2attn's bf16 training run; auto: only where the measured bf16 matmul peak is at "
                        f"least {FAST_BF16_RATIO}x the fp32 one (a CPU with AVX512-BF16 or AMX)")
    p.add_argument("--validate-every", type=int, metavar="N",
                   help="both toolkits validate every N steps in their budget runs (full 200, quick 30)")
    p.add_argument("--train-limit", type=int, help="use only the first N training pairs")
    p.add_argument("--dev-limit", type=int, help="use only the first N dev pairs")
    p.add_argument("--test-limit", type=int, help="decode only the first N test sentences")
    p.add_argument("--vocab-size", type=int, default=8000, help="joint subword vocabulary (both toolkits)")
    p.add_argument("--batch-tokens", type=int, default=4096, help="training token budget per batch (both)")
    p.add_argument("--joey-batch-tokens", default="match", metavar="match|same|N",
                   help="JoeyNMT's training batch_size in padded tokens: match (default: the budget at which its "
                        "unbucketed batches hold as many real target tokens as seq2attn's at --batch-tokens), "
                        "same (--batch-tokens), or a number")
    p.add_argument("--decode-batch-tokens", type=int, default=1024,
                   help="seq2attn decoding token budget (~64 Multi30k sentences, JoeyNMT decodes 64 per batch)")
    p.add_argument("--beam", type=int, default=5, help="beam size of the beam rows")
    p.add_argument("--repeats", type=int, default=3, metavar="R",
                   help="throughput and decoding measured R times per side, interleaved; median (default: %(default)s)")
    p.add_argument("--max-output-length", type=int, default=0, metavar="N",
                   help="the headline decoding on both sides: at most N output tokens per sentence (seq2attn "
                   "--max-len-a 0 --max-len-b N, JoeyNMT max_output_length N); 0: each toolkit's own length rule "
                   "(default: %(default)s)")
    p.add_argument("--shared-cap", type=int, default=100, metavar="N",
                   help="a secondary decoding, once per search and side, with both toolkits capped at N output "
                   "tokens (when the headline is the own rule); 0: none (default: %(default)s)")
    p.add_argument("--decode-weights", choices=("last", "best"), default="last",
                   help="the weights both toolkits decode: last (at the end of the budget: seq2attn's last "
                   "checkpoint, JoeyNMT's latest.ckpt saved on SIGINT) or best (each one's best by dev BLEU; "
                   "seq2attn validates once more after its budget, JoeyNMT does not) (default: %(default)s)")
    p.add_argument("--equal-padding", choices=("on", "off"), default="on",
                   help="also measure seq2attn's training throughput on batches of JoeyNMT's composition "
                   "(random order, no bucketing) at JoeyNMT's padded budget, R times, interleaved: the "
                   "'equal padding' ratio beside the 'as shipped' one (default: %(default)s)")
    p.add_argument("--malloc", choices=("kept", "system"), default="kept",
                   help="allocator of both toolkits' training: kept (glibc keeps freed memory: seq2attn's mallopt, "
                   "JoeyNMT's MALLOC_MMAP_MAX_/MALLOC_TRIM_THRESHOLD_) or system (glibc defaults for both)")
    p.add_argument("--joey-normalization", choices=("batch", "tokens"), default="batch",
                   help="JoeyNMT's loss normalization (its default: batch; its own recipes: tokens)")
    p.add_argument("--seq2attn-set", action="append", default=[], metavar="KEY=VALUE",
                   help="extra seq2attn config override for every seq2attn training, repeatable; breaks the "
                   "matched settings, for smoke tests only (e.g. model.emb_size=32)")
    p.add_argument("--decode-only", type=Path, metavar="RUN_DIR",
                   help="decode again (both toolkits, in this run) with the models that an earlier run trained "
                   "in RUN_DIR (benchmarks/work/runs/<stamp>): decoding figures only, e.g. after a change to search")
    p.add_argument("--work", type=Path, default=HERE / "work", help="scratch: data, models, logs, JoeyNMT venv")
    p.add_argument("--out", type=Path, help="results JSON (default: benchmarks/results/<date>-<mode>.json)")
    return p.parse_args(argv)


def resolve_mode(args: argparse.Namespace) -> Mode:
    base = QUICK if args.quick else FULL
    pick = lambda given, default: default if given is None else given
    return Mode(budget_min=pick(args.budget_min, base.budget_min),
                warmup_steps=pick(args.warmup_steps, base.warmup_steps),
                measure_steps=pick(args.measure_steps, base.measure_steps),
                bf16_steps=pick(args.bf16_steps, base.bf16_steps),
                validate_every=pick(args.validate_every, base.validate_every),
                test_limit=pick(args.test_limit, base.test_limit))


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    mode = resolve_mode(args)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    if args.no_peer and args.peer_only:
        say("benchmarks.run: error: --no-peer and --peer-only leave nothing to run; give one of them")
        return 2
    if args.repeats < 1:
        say(f"benchmarks.run: error: --repeats {args.repeats}; must be >= 1")
        return 2
    for m in models:
        if m not in MODELS:
            say(f"benchmarks.run: error: --models {m!r}; choose from: {', '.join(MODELS)}")
            return 2
    if args.joey_batch_tokens not in ("match", "same") and not (args.joey_batch_tokens.isdigit()
                                                                and int(args.joey_batch_tokens) > 0):
        say(f"benchmarks.run: error: --joey-batch-tokens {args.joey_batch_tokens!r}; give match, same or a "
            "positive number of tokens")
        return 2
    if mode.validate_every < 1 or (args.bf16 != "off" and mode.bf16_steps % mode.validate_every):
        say(f"benchmarks.run: error: --validate-every {mode.validate_every}; must be >= 1 and divide --bf16-steps "
            f"{mode.bf16_steps} (the fp32 run's dev BLEU is compared with the bf16 run's at that step)")
        return 2
    work = args.work.resolve()
    label = "decode-only" if args.decode_only else "quick" if args.quick else "full"
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    out = args.out or HERE / "results" / f"{stamp}-{label}.json"
    run_dir = work / "runs" / stamp
    try:
        if args.decode_only:
            run_dir = args.decode_only.resolve()
            data, one = earlier_inputs(run_dir, models, ours=not args.peer_only, peer=not args.no_peer)
        else:
            data, one = prepare_inputs(args, mode, run_dir)
    except FileNotFoundError as e:
        say(f"benchmarks.run: error: {e}")
        return 2
    minutes = expected_minutes(args, mode, models)
    say(f"benchmarks.run ({label}): expect roughly {minutes:.0f} minutes on a quiet 2-core machine")
    say(f"measuring the matmul peak ({args.threads} threads) ...")
    results = results_header(args, mode, label, argv)
    results["bf16_skipped"] = bf16_skip_reason(args.bf16, results["matmul_peak_gflops"])
    if results["bf16_skipped"]:
        say(f"bf16 run skipped: {results['bf16_skipped']}")
    setup = Setup(run_dir=run_dir, data=data, one=one, mode=mode, args=args,
                  peak=results["matmul_peak_gflops"], bf16_skip=results["bf16_skipped"])
    py = None
    if not args.no_peer:
        say("JoeyNMT: checking its virtual environment (installs on first use) ...")
        try:
            py = joey.ensure_installed(work, log=work / "joeynmt-install.log")
        except (subprocess.CalledProcessError, RuntimeError, OSError) as e:
            say(f"benchmarks.run: error: installing JoeyNMT failed ({e}); see {work / 'joeynmt-install.log'}")
            return 1
    for model in models:
        results["models"][model] = (decode_model if args.decode_only else bench_model)(model, setup, py)
        write_results(out, results)
    say(report.render(results))
    say(f"results: {out}")
    return 0


# Minutes beyond the training budget, per side and model: (fixed: start-up and the decodings;
# each extra throughput repeat), as the full run of 2026-12-01 took them on the 2-core AMD EPYC at
# matched batches (JoeyNMT's 170 window steps run at a third of seq2attn's speed; its uncached
# greedy search of an unfinished Transformer took 5 minutes a run).
FULL_RUN_MINUTES = {"rnn": ((4, 5), (8, 14)), "rnn-luong": ((4, 5), (8, 14)),
                    "transformer": ((3, 4), (24, 20))}
# --shared-cap, per side: one greedy and one beam-5 decoding at the 100-token cap, the wall_s of
# the 2026-12-01 JSONs' first decoding runs (20261201-012938-full-rnn, 20261201-041839-full-transformer)
SHARED_CAP_MINUTES = {"rnn": (0.4, 1.3), "rnn-luong": (0.4, 1.3), "transformer": (0.5, 7.7)}
# --equal-padding, per repeat (seq2attn only): not measured yet. An estimate: the 170 window steps at
# the 2026-12-01 step times (3,738 real target tokens at 2,168 tok/s RNN, 1,694 Transformer) times
# the padded tokens per step (JoeyNMT's 9,472 against 4,096), plus a start-up
EQUAL_PADDING_MINUTES = {"rnn": 12, "rnn-luong": 12, "transformer": 15}


def expected_minutes(args: argparse.Namespace, mode: Mode, models: list[str]) -> float:
    """A start-up estimate of the run's wall time on a quiet 2-core machine."""
    def side(model: str, which: int) -> float:
        if args.decode_only:
            return 5
        equal_padding = which == 0 and args.equal_padding == "on"
        capped = not args.max_output_length and args.shared_cap > 0
        if args.quick:
            return mode.budget_min + 2 + (args.repeats - 1) * (1 + which) + equal_padding * args.repeats
        fixed, per_repeat = FULL_RUN_MINUTES.get(model, FULL_RUN_MINUTES["transformer"])[which]
        return (mode.budget_min + fixed + (args.repeats - 1) * per_repeat
                + capped * SHARED_CAP_MINUTES.get(model, SHARED_CAP_MINUTES["transformer"])[which]
                + equal_padding * args.repeats * EQUAL_PADDING_MINUTES.get(model, 15))

    ours = 0 if args.peer_only else sum(side(m, 0) for m in models)
    peer = 0 if args.no_peer else sum(side(m, 1) for m in {PEER[m]: m for m in models}.values())
    return ours + peer


def bf16_skip_reason(choice: str, peak: dict[str, float]) -> str | None:
    """Why seq2attn's bf16 training run is left out, or None when it runs."""
    if choice == "on":
        return None
    if choice == "off":
        return "--bf16 off"
    fp32, bf16 = peak.get("fp32"), peak.get("bf16")
    if fp32 and bf16 is not None and bf16 < FAST_BF16_RATIO * fp32:
        return (f"this CPU has no fast bf16: its bf16 matmul peak ({bf16:g} GFLOP/s) is {bf16 / fp32:.2f}x the fp32 "
                f"one ({fp32:g}), below {FAST_BF16_RATIO}x (--bf16 on runs it anyway)")
    return None


def prepare_inputs(args: argparse.Namespace, mode: Mode, run_dir: Path) -> tuple[dict[str, Path], Path]:
    """The data slices as plain text, and a one-sentence test set (a decoder's start-up cost)."""
    data = common.prepare_data(args.data_dir, run_dir / "data", src="de", tgt="en",
                               limits={"train": args.train_limit, "dev": args.dev_limit, "test": mode.test_limit})
    one = run_dir / "data" / "one"
    for lang in ("de", "en"):
        one.with_suffix(f".{lang}").write_text(common.read_lines(Path(f"{data['test']}.{lang}"))[0] + "\n")
    return data, one


def earlier_inputs(run_dir: Path, models: list[str], *, ours: bool, peer: bool) -> tuple[dict[str, Path], Path]:
    """The data and models of an earlier run, for --decode-only."""
    data = {split: run_dir / "data" / split for split in ("train", "dev", "test")}
    needed = [Path(f"{data['test']}.de"), run_dir / "data" / "one.de",
              *(run_dir / f"seq2attn-{m}" for m in models if ours),
              *(run_dir / f"joeynmt-{PEER[m]}" for m in models if peer)]
    missing = [str(p) for p in needed if not p.exists()]
    if missing:
        raise FileNotFoundError(f"--decode-only {run_dir}: not a finished run (missing {', '.join(missing)})")
    return data, run_dir / "data" / "one"


def decode_model(model: str, setup: Setup, py: Path | None) -> dict:
    """--decode-only: both toolkits decode the test set again with the weights they trained."""
    why = _not_ours(model, setup)
    entry: dict = {"seq2attn": {"unavailable": why} if why else
                   _side(model, "seq2attn", lambda: {"decode": decode_seq2attn(model, setup)})}
    if py is not None:
        entry["joeynmt"] = _peer_once(model, setup, lambda: {"decode": decode_joey(PEER[model], setup, py)})
    return report.judge(model, entry)


def results_header(args: argparse.Namespace, mode: Mode, label: str, argv: list[str] | None) -> dict:
    """The machine, the matmul peak (measured now), the command and every setting."""
    settings = {**vars(mode), **{k: getattr(args, k) for k in (
        "vocab_size", "batch_tokens", "joey_batch_tokens", "threads", "decode_batch_tokens", "beam", "max_steps", "train_limit",
        "dev_limit", "seq2attn_set", "no_peer", "peer_only", "bf16", "malloc", "joey_normalization", "max_output_length",
        "shared_cap", "decode_weights", "equal_padding", "repeats")}}
    return {"machine": common.machine_info(args.threads),
            "matmul_peak_gflops": common.matmul_peak(threads=args.threads),
            "matmul_peak_method": f"best of 10 runs of a 1024 x 1024 @ 1024 x 1024 matmul, {args.threads} threads, "
                                  "in this process at the start of the run; fp32 again before each throughput "
                                  "repeat (matmul_peak_fp32_runs)",
            "command": " ".join(["python -m benchmarks.run", *(argv if argv is not None else sys.argv[1:])]),
            "mode": label, "settings": settings, "models": {}}


def repeat_peak(setup: Setup) -> float | None:
    """The fp32 matmul peak now, measured before each throughput repeat (the machine drifts)."""
    return common.matmul_peak(threads=setup.args.threads, dtypes=("fp32",)).get("fp32")


def bench_model(model: str, setup: Setup, py: Path | None) -> dict:
    """Both sides of one model; a side that fails is recorded with its error, the run goes on.

    Order, so that a drifting machine hits both sides alike: the fp32 matmul peak, the two budget
    runs (each one's throughput window is repeat 1), seq2attn's "equal padding" run 1; then for
    each repeat 2..R the peak again, seq2attn's window alone, JoeyNMT's, seq2attn's equal-padding
    window; then decoding, each search alternating the sides the same way. Repeat r of one side
    pairs with repeat r of the other (report.paired). A JoeyNMT run shared with an earlier row
    (``same_run_as``) is not repeated."""
    repeats, args = setup.args.repeats, setup.args
    peak = repeat_peak(setup)
    entry: dict = {"seq2attn": _side(model, "seq2attn", lambda: _ours(model, setup, decode=False, peak=peak))}
    ours = entry["seq2attn"]
    peer_fresh = py is not None and f"peer:{PEER[model]}" not in setup.cache
    if py is not None:
        entry["joeynmt"] = _peer_once(model, setup, lambda: _peer(PEER[model], setup, py, decode=False))
    peer = entry.get("joeynmt", {}) if peer_fresh else {}
    ok = lambda side: bool(side) and "error" not in side and "unavailable" not in side
    padded = None
    if ok(ours) and args.equal_padding == "on":
        padded = _try(equal_padding_budget, setup, py)
        if padded is None:
            ours["train_equal_padding"] = {"unavailable": "needs JoeyNMT's padded budget: run JoeyNMT, or give "
                                                          "--joey-batch-tokens same or a number"}

    def equal_padding(r: int) -> None:
        if padded is not None:
            say(f"[{model}] seq2attn: equal-padding throughput {r} of {repeats} (batches of {padded} padded tokens) ...")
            add_equal_padding_repeat(ours, _try(equal_padding_seq2attn, model, setup, r, padded), padded)

    equal_padding(1)
    for r in range(2, repeats + 1):
        peak = repeat_peak(setup)
        if ok(ours):
            say(f"[{model}] seq2attn: throughput repeat {r} of {repeats} ...")
            add_throughput_repeat(ours, _try(throughput_seq2attn, model, setup, r), peak)
        if ok(peer):
            say(f"[{model}] JoeyNMT: throughput repeat {r} of {repeats} ...")
            add_throughput_repeat(peer, _try(throughput_joey, PEER[model], setup, py, r), None)
        equal_padding(r)
    _decode_interleaved(model, setup, py, ours if ok(ours) else None, peer if ok(peer) else None)
    return report.judge(model, entry)


def _peer_once(model: str, setup: Setup, measure) -> dict:
    """JoeyNMT's figures for ``model``: its run of PEER[model], measured once per harness run and
    shared by the seq2attn rows compared with it (``same_run_as`` says which row measured it)."""
    key = f"peer:{PEER[model]}"
    if key in setup.cache:
        first, figures = setup.cache[key]
        say(f"[{model}] JoeyNMT: the {PEER[model]} run measured for the {first} row")
        return {**figures, "same_run_as": first}
    figures = _side(model, "JoeyNMT", measure)
    setup.cache[key] = (model, figures)
    return figures


def _side(model: str, name: str, measure) -> dict:
    try:
        return measure()
    except (RuntimeError, OSError, ValueError) as e:
        say(f"[{model}] {name}: FAILED: {e}")
        return {"error": str(e)}


def _not_ours(model: str, setup: Setup) -> str | None:
    """Why seq2attn's side of ``model`` is not run, or None."""
    return "not run (--peer-only)" if setup.args.peer_only else s2a.unavailable(model)


def _ours(model: str, setup: Setup, *, decode: bool = True, peak: float | None = None) -> dict:
    why = _not_ours(model, setup)
    if why:
        say(f"[{model}] seq2attn: {why}")
        return {"unavailable": why}
    say(f"[{model}] seq2attn: training ...")
    ours = train_seq2attn(model, setup, peak)
    if decode:
        say(f"[{model}] seq2attn: decoding ...")
        ours["decode"] = decode_seq2attn(model, setup)
    return ours


def _peer(model: str, setup: Setup, py: Path, *, decode: bool = True) -> dict:
    say(f"[{model}] JoeyNMT: training ...")
    peer = train_joey(model, setup, py)
    if decode:
        say(f"[{model}] JoeyNMT: decoding ...")
        peer["decode"] = decode_joey(model, setup, py)
    return peer


def _try(measure, *args):
    """A repeat that fails is left out (and said), the others still count."""
    try:
        return measure(*args)
    except (RuntimeError, OSError, ValueError) as e:
        say(f"  repeat FAILED: {e}")
        return None


def _decode_interleaved(model: str, setup: Setup, py: Path | None, ours: dict | None, peer: dict | None) -> None:
    """Each search its repeats' times, alternating the sides; figures are the medians
    (``combine_repeats``)."""
    sides = []
    if ours is not None:
        sides.append(("seq2attn", ours, lambda: startup_seq2attn(model, setup),
                      lambda search, start, r: decode_once_seq2attn(model, setup, search, start, r)))
    if peer is not None:
        sides.append(("JoeyNMT", peer, lambda: startup_joey(PEER[model], setup, py),
                      lambda search, start, r: decode_once_joey(PEER[model], setup, py, search, start, r)))
    starts = {}
    for label, figures, startup, _ in sides:
        try:
            starts[label] = startup()
        except (RuntimeError, OSError, ValueError) as e:
            say(f"[{model}] {label}: decoding FAILED: {e}")
            figures["decode"] = {"error": str(e)}
    for search in searches(setup):
        runs: dict[str, list[dict]] = {label: [] for label, *_ in sides}
        for r in range(1, search.repeats + 1):
            for label, _, _, once in sides:
                if label in starts:
                    say(f"[{model}] {label}: decoding {search.name}, run {r} of {search.repeats} ...")
                    result = _try(once, search, starts[label], r)
                    runs[label].append(result if result is not None else {"error": "failed"})
        for label, figures, _, _ in sides:
            if label in starts:
                figures.setdefault("decode", {})[search.name] = combine_repeats(runs[label])


def write_results(path: Path, results: dict) -> None:
    """Written after each model, so an interrupted full run keeps what it measured."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")



def cli() -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so run_child ends its child first
    try:
        return main()
    except KeyboardInterrupt:  # the child was stopped by run_child; keep what was written
        say("benchmarks.run: interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(cli())
