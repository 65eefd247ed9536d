"""Decoding speed: sentences/s and generated tokens/s for greedy and beam search, per model.

    python -m benchmarks.decode --model runs/m30k-rnn --model runs/m30k-transformer \
        --data-dir ../shared/corpora --beams 1,5,10

Input: Multi30k test_2016_flickr (1,000 sentences) in the model's source language (or --src FILE).
Each setting is warmed up on a few sentences, then timed over the whole set with ``translate``
(tokenization, batching, search, detokenization: what a user waits for). BLEU against the reference
is reported when there is one, so a speed-up that costs quality shows. Writes a JSON report
(default benchmarks/results/decode.json) and prints a Markdown table on stdout. Run it on a quiet
machine: figures measured next to other jobs are not worth publishing.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from seq2attn.inference.translate import translate
from seq2attn.modeldir.checkpoint import load
from seq2attn.nn.models import count_parameters
from seq2attn.nn.runtime import resolve_device
from seq2attn.text.corpora import MULTI30K_URL, multi30k_file, read_lines
from seq2attn.text.metrics import corpus_scores

RESULTS = Path(__file__).resolve().parent / "results" / "decode.json"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.decode", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", action="append", required=True, type=Path, help="model directory (repeatable)")
    p.add_argument("--data-dir", default=None, help="local corpora (holding multi30k/), e.g. ../shared/corpora")
    p.add_argument("--src", type=Path, help="source file to translate instead of Multi30k test_2016_flickr")
    p.add_argument("--ref", type=Path, help="reference for --src (BLEU)")
    p.add_argument("--beams", default=None, help="comma-separated beam sizes; 1 is greedy (default: 1,5,10)")
    p.add_argument("--alpha", type=float, default=0.0, help="length penalty of the beam runs")
    p.add_argument("--batch-tokens", type=int, default=None, help="decoding token budget (default: the model's)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    p.add_argument("--repeat", type=int, default=1, help="timed runs per setting; the fastest counts")
    p.add_argument("--quick", action="store_true", help="100 sentences (and beams 1,5 unless --beams): a smoke run")
    p.add_argument("--cache-only", action="store_true", help="Transformer: skip the runs without the KV cache")
    p.add_argument("--precisions", default="fp32", help="comma-separated decode.precision values to time, e.g. "
                   "fp32,bf16 (default: %(default)s)")
    p.add_argument("--out", type=Path, default=RESULTS, help="JSON report")
    return p.parse_args(argv)


def test_set(loaded, args) -> tuple[list[str], list[str] | None]:
    if args.src is not None:
        return read_lines(args.src), (read_lines(args.ref) if args.ref else None)
    src_lang, tgt_lang = loaded.cfg.data.src_lang or "de", loaded.cfg.data.tgt_lang or "en"
    get = lambda lang: read_lines(multi30k_file(f"test_2016_flickr.{lang}.gz", data_dir=args.data_dir,
                                                base_url=MULTI30K_URL, cache_dir=None))
    return get(src_lang), get(tgt_lang)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def measure(loaded, lines: list[str], refs: list[str] | None, *, beam: int, precision: str, args, device) -> dict:
    decode = replace(loaded.cfg.decode, beam_size=beam, nbest=1, sample=False, alpha=args.alpha if beam > 1 else 0.0,
                     batch_tokens=args.batch_tokens or loaded.cfg.decode.batch_tokens, precision=precision)
    translate(loaded, lines[:50], decode=decode, device=device)  # warm-up: allocator, kernels, caches
    best, result = float("inf"), None
    for _ in range(args.repeat):
        _sync(device)
        start = time.perf_counter()
        result = translate(loaded, lines, decode=decode, device=device)
        _sync(device)
        best = min(best, time.perf_counter() - start)
    hyps = [t.hyp for t in result.translations]
    tokens = sum(len(t.hyp_tokens) for t in result.translations)
    row = {"beam": beam, "precision": precision, "alpha": decode.alpha, "batch_tokens": decode.batch_tokens, "sentences": len(lines),
           "seconds": round(best, 3), "sentences_per_s": round(len(lines) / best, 1),
           "tokens_per_s": round(tokens / best, 1)}
    if refs is not None:
        row["bleu"] = round(corpus_scores(hyps, [refs], metrics=["bleu"])[0].score, 2)
    return row


def machine(device: torch.device) -> dict:
    info = {"python": platform.python_version(), "torch": torch.__version__, "cpu": platform.processor() or
            platform.machine(), "threads": torch.get_num_threads(), "device": str(device)}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def table(rows: list[dict]) -> str:
    head = ("| model | backend | KV cache | params | precision | beam | sentences/s | tokens/s | BLEU |\n"
            "|---|---|---|---:|---|---:|---:|---:|---:|\n")
    cache = {True: "on", False: "off", None: "n/a"}
    return head + "".join(
        f"| {r['model']} | {r['backend']} | {cache[r['kv_cache']]} | {r['params'] / 1e6:.2f}M | "
        f"{r.get('precision', 'fp32')} | {r['beam']} | "
        f"{r['sentences_per_s']:,.1f} | "
        f"{r['tokens_per_s']:,.0f} | {r.get('bleu', '')} |\n" for r in rows)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    beams = [int(b) for b in (args.beams or ("1,5" if args.quick else "1,5,10")).split(",")]
    rows = []
    for model_dir in args.model:
        loaded = load(model_dir, device=device)
        lines, refs = test_set(loaded, args)
        if args.quick:
            lines, refs = lines[:100], (refs[:100] if refs else None)
        # a Transformer is timed with and without its KV cache (same outputs, different speed)
        caches = [True, False] if hasattr(loaded.model, "use_cache") and not args.cache_only else [None]
        for cache in caches:
            if cache is not None:
                loaded.model.use_cache = cache
            for precision in args.precisions.split(","):
                for beam in beams:
                    row = {"model": model_dir.name, "backend": loaded.cfg.model.backend, "kv_cache": cache,
                           "params": count_parameters(loaded.model),
                           **measure(loaded, lines, refs, beam=beam, precision=precision, args=args, device=device)}
                    print(f"{row['model']} {precision} beam {beam} cache {cache}: {row['sentences_per_s']} "
                          f"sentences/s, {row['tokens_per_s']} tokens/s", file=sys.stderr)
                    rows.append(row)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {"command": "python -m benchmarks.decode " + " ".join(sys.argv[1:] if argv is None else argv),
              "machine": machine(device), "results": rows}
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(table(rows), end="")


if __name__ == "__main__":
    main()
