"""Issue 27, item 1: where JoeyNMT's slower learning per step comes from, one setting at a time.

    python -m benchmarks.learning_gap --data-dir ../shared/corpora --variants joey-rnn,joey-rnn-emb01 \\
        --steps 200 --validate-every 50 --threads 1 --out benchmarks/results/<date>-learning-gap-joey.json
    python -m benchmarks.learning_gap --report A.json B.json     # the table of several invocations

Each variant trains one toolkit for exactly ``--steps`` steps on Multi30k de->en from the
benchmark's configs (``benchmarks/configs``) at the benchmark's matched batches (seq2attn: 4,096
padded tokens, length-bucketed; JoeyNMT: the budget at which its random batches hold as many real
target tokens, ``sides.joey_batch``), with one change (:data:`VARIANTS`), and validates every
``--validate-every`` steps. The figure compared is **dev loss in nats per sentence**: the two
tokenizers cut the dev references into different numbers of pieces, so a per-piece loss (or
perplexity) is not comparable across toolkits; a sentence's total is. Both sides report plain
cross-entropy only without label smoothing (JoeyNMT's validation loss with smoothing is the KL
divergence to the smoothed target), so the Transformer variants turn smoothing off on both sides.

Speed is not measured here, so variants may share the machine (for example two invocations
pinned with ``taskset -c 0`` and ``-c 1``). The JoeyNMT variants of one invocation share its
sentencepiece model and batch budget; give each invocation its own ``--work``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from . import common
from . import peer_joeynmt as joey
from . import seq2attn_side as s2a
from .common import check
from .sides import Setup, _spm, joey_batch

HERE = Path(__file__).resolve().parent
LOG_EVERY = 10  # JoeyNMT's validation_freq must be a multiple of its logging_freq


@dataclass(frozen=True)
class Variant:
    side: str  # "seq2attn" or "joeynmt"
    model: str  # the benchmark config: rnn, rnn-luong, transformer
    sets: tuple[str, ...] = ()  # seq2attn --set KEY=VALUE, or JoeyNMT section.key=value
    unbucketed: bool = False  # seq2attn on JoeyNMT's batch composition and padded budget
    change: str = ""  # what the variant changes, for the table


_JOEY_INIT = ("model.embed_init_weight=1.0", "model.initializer=uniform", "model.init_weight=0.0442",
              "model.bias_initializer=uniform", "model.bias_init_weight=0.0442")
_NO_LS = ("training.label_smoothing=0.0",)

VARIANTS: dict[str, Variant] = {
    # seq2attn
    "s2a-rnn": Variant("seq2attn", "rnn", change="as benchmarked: Bahdanau wiring"),
    "s2a-rnn-seed2": Variant("seq2attn", "rnn", ("train.seed=2",), change="another seed (the noise)"),
    "s2a-rnn-luong": Variant("seq2attn", "rnn-luong", change="Luong wiring with input feeding, as JoeyNMT's"),
    "s2a-rnn-luong-nodrop": Variant("seq2attn", "rnn-luong", ("model.dropout=0",), change="Luong wiring, no dropout"),
    # JoeyNMT's clip_grad_norm 1.0 on a loss summed per sentence is about 0.074 on seq2attn's per-token mean
    # (13.6 target pieces per sentence): seq2attn clipped as tightly
    "s2a-rnn-clip0074": Variant("seq2attn", "rnn", ("train.clip_norm=0.074",),
                                change="gradient clipped at 0.074 (JoeyNMT's 1.0 in per-token units)"),
    "s2a-rnn-unbucketed": Variant("seq2attn", "rnn", unbucketed=True,
                                  change="JoeyNMT's batches: random order, its padded budget"),
    "s2a-transformer-ls0": Variant("seq2attn", "transformer", ("train.label_smoothing=0",),
                                   change="no label smoothing"),
    "s2a-transformer-ls0-seed2": Variant("seq2attn", "transformer", ("train.label_smoothing=0", "train.seed=2"),
                                         change="no label smoothing, another seed"),
    "s2a-transformer-ls0-unbucketed": Variant("seq2attn", "transformer", ("train.label_smoothing=0",), unbucketed=True,
                                              change="no label smoothing; JoeyNMT's batches"),
    # JoeyNMT
    "joey-rnn": Variant("joeynmt", "rnn", change="as benchmarked: embeddings N(0, 1) since 2026-12-04"),
    # the config before 2026-12-04 (its first measurement ran `joey-rnn` then, and `joey-rnn` with
    # model.embed_init_weight=1.0 as "joey-rnn-emb1": results/20261204-learning-gap-*.json)
    "joey-rnn-seed2": Variant("joeynmt", "rnn", ("random_seed=2",), change="another seed (the noise)"),
    "joey-rnn-emb01": Variant("joeynmt", "rnn", ("model.embed_init_weight=0.1",),
                              change="embeddings N(0, 0.1): JoeyNMT's small RNN example, the config before"),
    "joey-rnn-torchinit": Variant("joeynmt", "rnn", _JOEY_INIT,
                                  change="also weights and biases U(+-0.0442): about PyTorch's defaults"),
    "joey-rnn-nodrop": Variant("joeynmt", "rnn", ("model.encoder.dropout=0", "model.decoder.dropout=0",
                                                  "model.decoder.hidden_dropout=0"), change="no dropout"),
    "joey-rnn-noclip": Variant("joeynmt", "rnn", ("training.clip_grad_norm=null",), change="no gradient clipping"),
    "joey-rnn-tokens": Variant("joeynmt", "rnn", ("training.normalization=tokens",),
                               change="loss divided by tokens, not sentences"),
    "joey-transformer-ls0": Variant("joeynmt", "transformer", _NO_LS,
                                    change="no label smoothing; embeddings N(0, 256^-0.5) since 2026-12-04"),
    # the config before 2026-12-04 (results/20261204-learning-gap-h200.json ran it as
    # `joey-transformer-ls0`, and today's config as `joey-transformer-ls0-emb`)
    "joey-transformer-ls0-xavier": Variant("joeynmt", "transformer", (*_NO_LS, "model.embed_initializer=xavier_uniform",
                                                                      "model.embed_init_gain=1.0"),
                                           change="no label smoothing; Xavier embeddings (std 0.0156), the config before"),
    "joey-transformer-ls0-seed2": Variant("joeynmt", "transformer", (*_NO_LS, "random_seed=2"),
                                          change="no label smoothing, another seed"),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.learning_gap", description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", type=Path, default=Path("../shared/corpora"))
    p.add_argument("--variants", default="s2a-rnn,joey-rnn", help=f"comma-separated: {', '.join(VARIANTS)}")
    p.add_argument("--steps", type=int, default=200, help="training steps of every variant")
    p.add_argument("--validate-every", type=int, default=50, help=f"a multiple of {LOG_EVERY}")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                   help="where both toolkits train (fp32 on either; loss per step does not depend on it)")
    p.add_argument("--train-limit", type=int, help="use only the first N training pairs")
    p.add_argument("--dev-limit", type=int, help="validate on the first N dev pairs")
    p.add_argument("--batch-tokens", type=int, default=4096, help="seq2attn's padded budget (JoeyNMT's is matched)")
    p.add_argument("--joey-batch-tokens", default="match", metavar="match|same|N")
    p.add_argument("--vocab-size", type=int, default=8000)
    p.add_argument("--seq2attn-set", action="append", default=[], metavar="KEY=VALUE",
                   help="added to every seq2attn variant (before the variant's own change)")
    p.add_argument("--work", type=Path, default=HERE / "work" / "learning-gap", help="data, models and logs")
    p.add_argument("--venv-home", type=Path, default=HERE / "work", help="where JoeyNMT's venv is (or goes)")
    p.add_argument("--out", type=Path, help="JSON (default: benchmarks/results/<date>-learning-gap.json)")
    p.add_argument("--report", type=Path, nargs="+", metavar="JSON", help="print the table of these results and exit")
    return p.parse_args(argv)


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.report:
        say(render([json.loads(p.read_text()) for p in args.report]))
        return 0
    names = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown or not names:
        say(f"learning_gap: error: --variants {','.join(unknown) or args.variants!r}; choose from: {', '.join(VARIANTS)}")
        return 2
    if args.steps < 1 or args.validate_every < LOG_EVERY or args.validate_every % LOG_EVERY:
        say(f"learning_gap: error: --steps must be >= 1 and --validate-every a positive multiple of {LOG_EVERY}")
        return 2
    work = args.work.resolve()
    try:
        data = common.prepare_data(args.data_dir, work / "data", src="de", tgt="en",
                                   limits={"train": args.train_limit, "dev": args.dev_limit, "test": 1})
    except FileNotFoundError as e:
        say(f"learning_gap: error: {e}")
        return 2
    st = Setup(run_dir=work, data=data, one=data["test"], mode=None, args=args, peak={})
    py = None
    if any(VARIANTS[n].side == "joeynmt" or VARIANTS[n].unbucketed for n in names):
        try:
            py = joey.ensure_installed(args.venv_home.resolve(), log=work / "joeynmt-install.log")
        except (OSError, RuntimeError, subprocess.CalledProcessError) as e:
            say(f"learning_gap: error: installing JoeyNMT failed ({e}); see {work / 'joeynmt-install.log'}")
            return 1
    dev_refs = common.read_lines(Path(f"{data['dev']}.en"))
    out = args.out or HERE / "results" / f"{dt.datetime.now(dt.timezone.utc):%Y%m%d}-learning-gap.json"
    results = {"command": " ".join(["python -m benchmarks.learning_gap", *(argv if argv is not None else sys.argv[1:])]),
               "machine": common.machine_info(args.threads),
               "settings": {k: getattr(args, k) for k in ("steps", "validate_every", "threads", "device", "train_limit", "dev_limit",
                                                          "batch_tokens", "joey_batch_tokens", "vocab_size",
                                                          "seq2attn_set")},
               "dev_sentences": len(dev_refs), "variants": {}}
    for name in names:
        say(f"[{name}] training {args.steps} steps ...")
        try:
            results["variants"][name] = run_variant(name, VARIANTS[name], st, py, dev_refs)
        except (RuntimeError, OSError, ValueError) as e:
            say(f"[{name}] FAILED: {e}")
            results["variants"][name] = {"error": str(e)}
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2) + "\n")
    say(render([results]))
    say(f"results: {out}")
    return 0


def run_variant(name: str, v: Variant, st: Setup, py: Path | None, dev_refs: list[str]) -> dict:
    args, model_dir = st.args, st.run_dir / name
    entry = {"side": v.side, "model": v.model, "sets": list(v.sets), "unbucketed": v.unbucketed, "change": v.change}
    if v.side == "seq2attn":
        batch = joey_batch(st, py)["batch_tokens"] if v.unbucketed else args.batch_tokens
        sets = [f"train.batch_tokens={batch}", f"tokenizer.vocab_size={args.vocab_size}", f"train.log_every={LOG_EVERY}",
                f"train.validate_every={args.validate_every}", f"train.max_steps={args.steps}", *args.seq2attn_set,
                *v.sets]
        child = s2a.train(s2a.TrainPlan(v.model, model_dir, st.data, "de", "en", args.threads, sets,
                                        unbucketed=v.unbucketed, device=args.device), log=st.run_dir / "logs" / f"{name}.log")
        check(child, f"seq2attn {name}")
        rows = s2a.metrics(model_dir)
        pieces = seq2attn_dev_pieces(model_dir, dev_refs)
        curve = [{"step": r["step"], "loss_per_piece": r["loss"], "bleu": r["bleu"]}
                 for r in rows if r.get("kind") == "valid" and r["step"] <= args.steps]
        entry.update(batch_tokens=batch, target_tokens_per_step=s2a.target_tokens_per_step(rows))
    else:
        plan = joey.JoeyPlan(v.model, model_dir, dict(st.data), "de", "en", *_spm(st, py), validate_every=args.validate_every, max_steps=args.steps,
                             batch_tokens=joey_batch(st, py)["batch_tokens"], log_every=LOG_EVERY,
                             sets=(*v.sets, *(("training.use_cuda=true",) if args.device == "cuda" else ())))
        cfg = joey.write_config(plan, st.run_dir / "configs" / f"{name}.yaml", splits=("train", "dev"))
        child = joey.train(py, cfg, model_dir, threads=args.threads, budget_min=None, log=st.run_dir / "logs" / f"{name}.log")
        check(child, f"JoeyNMT {name}")
        pieces = joey_dev_pieces(st, py)
        curve = [{"step": r["step"], "loss_per_piece": math.log(r["ppl"]), "bleu": r["bleu"]}
                 for r in joey.validations(model_dir) if r["step"] <= args.steps]
        entry.update(batch_tokens=plan.batch_tokens, target_tokens_per_step=joey.target_tokens_per_step(model_dir))
    for row in curve:
        row["nats_per_sentence"] = round(row["loss_per_piece"] * pieces / len(dev_refs), 3)
    entry.update(dev_target_pieces=pieces, wall_s=round(child.wall_s, 1), curve=curve)
    return entry


def seq2attn_dev_pieces(model_dir: Path, refs: list[str]) -> int:
    """The dev references' target tokens as seq2attn scores them: its pieces plus EOS per sentence."""
    from seq2attn.text.tokenizer import TextCodec

    return sum(len(ids) + 1 for ids in TextCodec.load(model_dir).encode(refs, side="tgt"))


def joey_dev_pieces(st: Setup, py: Path) -> int:
    """The same in JoeyNMT's sentencepiece pieces (JoeyNMT's ``ntokens`` counts EOS too); segmented
    once per invocation, its variants share the sentencepiece model."""
    if "joey_dev_pieces" not in st.cache:
        lengths = joey.token_lengths(py, _spm(st, py)[0], [Path(f"{st.data['dev']}.en")])[0]
        st.cache["joey_dev_pieces"] = int(lengths.sum() + len(lengths))
    return st.cache["joey_dev_pieces"]


def render(results: list[dict]) -> str:
    """One row per variant: dev nats per sentence (and dev BLEU) at each validation step."""
    variants = {name: v for r in results for name, v in r["variants"].items()}
    steps = sorted({row["step"] for v in variants.values() for row in v.get("curve", [])})
    head = ["variant", "change", *(f"step {s}" for s in steps)]
    lines = [" | ".join(head), " | ".join("---" for _ in head)]
    for name, v in variants.items():
        if "error" in v:
            lines.append(" | ".join([name, "FAILED", *("" for _ in steps)]))
            continue
        at = {row["step"]: row for row in v["curve"]}
        cells = [f"{at[s]['nats_per_sentence']:.1f} ({at[s]['bleu']:.1f})" if s in at else "" for s in steps]
        lines.append(" | ".join([name, v["change"], *cells]))
    return "dev loss, nats per sentence (dev BLEU, greedy)\n" + "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
