"""Per-scorer cost in both decoder wirings on Multi30k-sized batches.

For every (wiring, scorer) pair this measures

* decoding: milliseconds per ``model.step`` at batch 64 x source length 20 (inference mode,
  keys projected once per batch by ``encode``, as greedy and beam search use the model);
* training: target tokens per second of teacher-forced forward + backward + Adam step over
  token-budget batches of Multi30k de-en (``train.batch_tokens`` of the multi30k preset).

Model sizes are the multi30k preset's (emb 256, encoder 2 x 256, decoder 512), so every scorer,
``dot`` and ``kernel`` included, runs with its sizes as given.

Run on a quiet machine (timings of a loaded one mean little):

    python -m benchmarks.attention --data-dir ../shared/corpora            # the README figures
    python -m benchmarks.attention --data-dir ../shared/corpora --quick    # smoke run, seconds

It prints a table on stderr and writes benchmarks/results/attention.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F

from seq2attn.config import ModelConfig, resolve_config
from seq2attn.nn.attention import ATTENTIONS
from seq2attn.nn.batches import Batch, collate, make_batches
from seq2attn.nn.models import build_model
from seq2attn.special import PAD_ID
from seq2attn.text.corpora import CORPORA, load_corpus
from seq2attn.text.tokenizer import TextCodec

WIRINGS = ("bahdanau", "luong")
RESULTS = Path(__file__).resolve().parent / "results" / "attention.json"


@dataclass(frozen=True)
class Settings:
    sentences: int  # training sentences used for the tokenizer and the batches
    vocab_size: int
    decode_steps: int  # timed decoding steps per pair
    train_steps: int  # timed training steps per pair
    warmup: int  # untimed steps first (allocator, thread pool)
    repeats: int  # the decoding figure is the median of this many runs


FULL = Settings(sentences=29_000, vocab_size=8000, decode_steps=50, train_steps=30, warmup=3, repeats=3)
QUICK = Settings(sentences=2_000, vocab_size=1000, decode_steps=3, train_steps=2, warmup=1, repeats=1)


def prepare(data_dir: str, settings: Settings) -> tuple[TextCodec, list[list[int]], list[list[int]]]:
    """Multi30k de-en, a BPE tokenizer as the multi30k preset trains it, and token ids."""
    cfg = resolve_config(preset=CORPORA["multi30k"].preset,
                         sets=[f"tokenizer.vocab_size={settings.vocab_size}"])
    train = load_corpus("multi30k", src_lang="de", tgt_lang="en", data_dir=data_dir).train
    src, tgt = train.src[: settings.sentences], train.tgt[: settings.sentences]
    codec = TextCodec.train(cfg.tokenizer, src, tgt)
    return codec, codec.encode(src, side="src"), codec.encode(tgt, side="tgt")


def decode_batch(src_ids: list[list[int]], *, rows: int = 64, length: int = 20) -> Batch:
    """``rows`` real sources cut to ``length`` tokens with EOS: no padding, every step full width."""
    long_enough = [s[: length - 1] for s in src_ids if len(s) >= length - 1][:rows]
    if len(long_enough) < rows:
        raise SystemExit(f"only {len(long_enough)} sources have {length - 1} tokens; use more --sentences")
    return collate(long_enough, None, list(range(rows)))


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


@torch.inference_mode()
def ms_per_step(model, batch: Batch, *, steps: int, warmup: int, repeats: int, device: torch.device) -> float:
    model.eval()
    src, lengths = batch.src.to(device), batch.src_lengths
    enc = model.encode(src, lengths)
    prev = src[:, 0]  # any real tokens: the cost of a step does not depend on which
    runs = []
    for _ in range(repeats):
        state = model.init_state(enc)
        for _ in range(warmup):
            state = model.step(prev, state, enc).state
        sync(device)
        start = time.perf_counter()
        for _ in range(steps):
            state = model.step(prev, state, enc).state
        sync(device)
        runs.append((time.perf_counter() - start) / steps * 1000)
    return statistics.median(runs)


def train_tokens_per_s(model, batches: list[Batch], *, steps: int, warmup: int, device: torch.device) -> float:
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    tokens, elapsed = 0, 0.0
    for i, batch in enumerate(batches[: warmup + steps]):
        batch = batch.to(device)
        sync(device)
        start = time.perf_counter()
        out = model(batch.src, batch.src_lengths, batch.tgt_in)
        loss = F.cross_entropy(out.logits.flatten(0, 1), batch.tgt_out.flatten(), ignore_index=PAD_ID,
                               reduction="sum")
        optimizer.zero_grad(set_to_none=True)
        (loss / batch.n_tgt_tokens).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        sync(device)
        if i >= warmup:
            elapsed += time.perf_counter() - start
            tokens += batch.n_tgt_tokens
    return tokens / elapsed


def run(args: argparse.Namespace) -> dict:
    settings = QUICK if args.quick else FULL
    if args.train_steps is not None:
        settings = replace(settings, train_steps=args.train_steps)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu"))
    codec, src_ids, tgt_ids = prepare(args.data_dir, settings)
    preset = resolve_config(preset=CORPORA["multi30k"].preset).model
    batch_tokens = resolve_config(preset=CORPORA["multi30k"].preset).train.batch_tokens
    batches = make_batches(src_ids, tgt_ids, batch_tokens=batch_tokens, rng=random.Random(1))
    random.Random(1).shuffle(batches)
    probe = decode_batch(src_ids)
    rows = []
    for wiring in WIRINGS:
        for name in ATTENTIONS:
            cfg: ModelConfig = replace(preset, decoder=wiring, attention=name)
            torch.manual_seed(1)
            model = build_model(cfg, src_vocab=codec.vocab_size("src"), tgt_vocab=codec.vocab_size("tgt")).to(device)
            ms = ms_per_step(model, probe, steps=settings.decode_steps, warmup=settings.warmup,
                             repeats=settings.repeats, device=device)
            tps = train_tokens_per_s(model, batches, steps=settings.train_steps, warmup=settings.warmup,
                                     device=device)
            rows.append({"wiring": wiring, "scorer": name, "ms_per_step": round(ms, 3), "train_tok_s": round(tps)})
            print(f"{wiring:9} {name:11} {ms:9.2f} ms/step {tps:10.0f} tok/s", file=sys.stderr, flush=True)
    return {
        "benchmark": "attention", "quick": args.quick, "device": str(device),
        "threads": torch.get_num_threads(), "torch": torch.__version__, "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(),
        "decode": {"batch": 64, "source_length": 20, "steps": settings.decode_steps},
        "train": {"batch_tokens": batch_tokens, "steps": settings.train_steps, "sentences": settings.sentences},
        "model": {k: getattr(preset, k) for k in ("emb_size", "hidden_size", "dec_hidden_size", "heads")},
        "rows": rows,
    }


def markdown(result: dict) -> str:
    lines = ["| wiring | scorer | ms / decoding step (batch 64 x src 20) | training target tok/s |",
             "|---|---|---:|---:|"]
    lines += [f"| {r['wiring']} | `{r['scorer']}` | {r['ms_per_step']:.2f} | {r['train_tok_s']:,} |"
              for r in result["rows"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.attention", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", required=True, help="directory with the Multi30k files, e.g. ../shared/corpora")
    parser.add_argument("--quick", action="store_true", help="tiny settings: a smoke run, not figures")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--train-steps", type=int, default=None,
                        help=f"timed training steps per pair (default {FULL.train_steps})")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"JSON results (default: {RESULTS})")
    args = parser.parse_args(argv)
    result = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(markdown(result))
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
