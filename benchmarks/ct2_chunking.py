"""CTranslate2 decoding with and without the per-length-limit chunking of seq2attn/inference/ct2.py.

    python -m benchmarks.ct2_chunking --model runs/de-en-transformer --data-dir ../shared/corpora \
        --threads 1,2 --repeats 3

Issue 27 (item 6): int8 measured slower than CTranslate2's own float32 at 2 threads (the 2026-11-30
engines table) where an earlier run had it faster at 1 thread, and the reversal came with 2 threads
and with the engine's chunking. This measures both, on the float32 and the int8 export of one
Transformer, greedy and beam 5, in two ways, alternating, ``--repeats`` times each:

- ``chunked``: ``CT2Engine.translate`` as shipped: length-sorted chunks of ``decode.batch_tokens``
  source tokens; greedy runs a chunk at its longest output limit, then again, at their own limit,
  the sentences whose output reached it; beam runs one call per limit within a chunk.
- ``one call``: one ``translate_batch`` over every source (length-sorted, CTranslate2 making its own
  batches of the same token budget) at the longest limit of the set, then a per-sentence
  post-check: an output longer than its sentence's own limit is cut to that limit.

It also checks, for each export, thread count and search, whether the two give the same output
pieces for every sentence (``identical``; ``differ`` lists the first few that do not), and how many
outputs the post-check cut (``cut_by_post_check``: those sentences' scores would need the cut
output's log-probability, which one call does not return). Every
measurement runs in this process (one translator per export and thread count), with no attention
returned, after a warm-up on the first 50 sentences. Writes a JSON report (``--out``) and prints
a Markdown table.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path

from benchmarks.common import machine_info, read_lines
from benchmarks.engines import exports, test_files

MODES = ("chunked", "one call")
WARMUP = 50


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.ct2_chunking", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, required=True, help="a trained seq2attn Transformer model directory")
    p.add_argument("--data-dir", type=Path, required=True, help="holds multi30k/, e.g. ../shared/corpora")
    p.add_argument("--threads", default="1,2", help="comma-separated CTranslate2 intra_threads (default: %(default)s)")
    p.add_argument("--beams", default="1,5", help="comma-separated beam sizes (default: %(default)s)")
    p.add_argument("--precisions", default="fp32,int8", help="the exports to run (default: %(default)s)")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per mode, alternating (default: %(default)s)")
    p.add_argument("--limit", type=int, default=None, help="only the first N test sentences (smoke runs)")
    p.add_argument("--max-len", metavar="A,B", help="output limit A x source length + B instead of the model's "
                   "decode.max_len_a/b (tight limits make many outputs reach theirs)")
    p.add_argument("--work", type=Path, default=Path("benchmarks/work/ct2-chunking"), help="exports and test files")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/ct2-chunking.json"), help="JSON report")
    return p.parse_args(argv)


def chunked(engine, texts: list[str], decode) -> list[list[str]]:
    """The engine as shipped: its output pieces per sentence."""
    result = engine.translate(texts, decode=decode, progress=None, attention=False)
    return [t.hyp_tokens for t in result.translations]


def one_call(engine, texts: list[str], decode, cut: list[int] | None = None) -> list[list[str]]:
    """One ``translate_batch`` at the longest limit of all, then each output cut at its own limit
    (the sentences cut are appended to ``cut``: their scores would be the longer output's, where the
    engine's re-run at the sentence's own limit scores the cut one)."""
    from seq2attn.inference.ct2 import _limit
    from seq2attn.special import EOS

    translator = engine.translator(decode.precision)
    options = engine._options(decode, attention=False)
    sources, _ = engine._sources(texts, decode)
    todo = sorted((i for i, s in enumerate(sources) if s), key=lambda i: len(sources[i]))
    limits = [_limit(len(s), decode) for s in sources]
    out: list[list[str]] = [[] for _ in texts]
    if not todo:
        return out
    results = translator.translate_batch([[*sources[i], EOS] for i in todo],  # options: max_batch_size in tokens
                                         max_decoding_length=max(limits[i] for i in todo), **options)
    for i, result in zip(todo, results):
        out[i] = list(result.hypotheses[0][: limits[i]])  # the post-check
        if cut is not None and len(result.hypotheses[0]) > limits[i]:
            cut.append(i)
    return out


def compare(a: list[list[str]], b: list[list[str]]) -> dict:
    differ = [i for i, (x, y) in enumerate(zip(a, b)) if x != y]
    return {"identical": not differ, "differing_sentences": len(differ), "differ": differ[:5]}


def measure(export: Path, texts: list[str], *, threads: int, beam: int, repeats: int,
            max_len: tuple[float, int] | None = None) -> dict:
    """Both modes on one export at one thread count and beam: seconds per run, alternating."""
    from seq2attn.inference.ct2 import CT2Engine

    engine = CT2Engine(export, device="cpu", threads=threads)
    decode = dataclasses.replace(engine.cfg.decode, beam_size=beam, alpha=0.0, precision="fp32", nbest=1,
                                 sample=False)
    if max_len is not None:
        decode = dataclasses.replace(decode, max_len_a=max_len[0], max_len_b=max_len[1])
    run = {"chunked": chunked, "one call": one_call}
    for mode in MODES:  # warm-up: thread pool, packed weights
        run[mode](engine, texts[:WARMUP], decode)
    seconds: dict[str, list[float]] = {mode: [] for mode in MODES}
    outputs = {}
    for _ in range(repeats):
        for mode in MODES:
            start = time.perf_counter()
            outputs[mode] = run[mode](engine, texts, decode)
            seconds[mode].append(round(time.perf_counter() - start, 3))
    cut: list[int] = []
    one_call(engine, texts, decode, cut)
    row = {"threads": threads, "beam": beam, "max_len": [decode.max_len_a, decode.max_len_b],
           **compare(outputs["chunked"], outputs["one call"]),
           "cut_by_post_check": len(cut)}
    for mode in MODES:
        median = statistics.median(seconds[mode])
        row[mode] = {"seconds_runs": seconds[mode], "sent_per_s": round(len(texts) / median, 1),
                     "sent_per_s_runs": [round(len(texts) / s, 1) for s in seconds[mode]]}
    return row


def table(rows: list[dict]) -> str:
    head = ("| export | threads | beam | chunked sent/s | one call sent/s | one call / chunked | same output | cut |\n"
            "|---|---:|---:|---:|---:|---:|---|---:|\n")
    fmt = lambda m: f"{m['sent_per_s']:,.1f} ({min(m['sent_per_s_runs']):,.1f}-{max(m['sent_per_s_runs']):,.1f})"
    return head + "".join(
        f"| {r['precision']} | {r['threads']} | {r['beam']} | {fmt(r['chunked'])} | {fmt(r['one call'])} | "
        f"{r['one call']['sent_per_s'] / r['chunked']['sent_per_s']:.2f}x | "
        f"{'yes' if r['identical'] else 'no: ' + str(r['differing_sentences']) + ' sentences'} | "
        f"{r['cut_by_post_check']} |\n" for r in rows)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    from seq2attn.modeldir.checkpoint import load_config

    data = load_config(args.model).data  # the model's own direction (test_files defaults to de->en)
    pair = (data.src_lang or "de", data.tgt_lang or "en")
    src, _ = test_files(args, pair)
    texts = read_lines(src)
    ct2 = exports(args.model, args.work)
    max_len = None if args.max_len is None else (float(args.max_len.split(",")[0]), int(args.max_len.split(",")[1]))
    rows = []
    for precision in args.precisions.split(","):
        for threads in (int(t) for t in args.threads.split(",")):
            for beam in (int(b) for b in args.beams.split(",")):
                row = {"precision": precision, **measure(ct2[precision], texts, threads=threads, beam=beam,
                                                         repeats=args.repeats, max_len=max_len)}
                print(f"{precision} threads {threads} beam {beam}: chunked {row['chunked']['sent_per_s']}, "
                      f"one call {row['one call']['sent_per_s']} sent/s, identical {row['identical']}",
                      file=sys.stderr)
                rows.append(row)
                args.out.parent.mkdir(parents=True, exist_ok=True)
                args.out.write_text(json.dumps({"command": "python -m benchmarks.ct2_chunking " + " ".join(argv),
                                                "machine": machine_info(max(int(t) for t in args.threads.split(","))),
                                                "pair": "-".join(pair),
                                                "sentences": len(texts), "results": rows}, indent=2) + "\n")
    print(table(rows), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
