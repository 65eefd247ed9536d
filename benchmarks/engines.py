"""Decoding engines side by side: seq2attn (PyTorch fp32 / bf16 / int8) and CTranslate2 (fp32 /
int8) on the same trained models, greedy and beam 5.

    python -m benchmarks.engines --transformer runs/m30k-transformer --rnn runs/m30k-rnn \
        --data-dir ../shared/corpora --threads 1

The Transformer is exported to CTranslate2 twice (float32 and int8 weights) into --work; an RNN
runs in seq2attn only (CTranslate2 runs Transformers). Every measurement is its own process
(``benchmarks.common.run_child``), so its peak RSS is its own: it loads the model through
``seq2attn.load``, translates 50 sentences to warm up, then times ``Model.translate`` (length penalty
alpha 0 on every engine, as CTranslate2's is not GNMT's; no attention returned) over
Multi30k test_2016_flickr (tokenization, batching, search, detokenization). Reported per run:
sentences/s, generated tokens/s (output pieces, EOS not counted), BLEU (sacrebleu, default
tokenization) and peak RSS. Writes a JSON report and prints a Markdown table on stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from benchmarks.common import (
    GIB,
    check,
    find_multi30k,
    machine_info,
    read_lines,
    run_child,
    split_lines,
    thread_env,
)

RESULTS = Path(__file__).resolve().parent / "results" / "engines.json"
WARMUP = 50
# (engine, precision): seq2attn runs the model directory, ctranslate2 an export of it
SETTINGS = [("seq2attn", "fp32"), ("seq2attn", "bf16"), ("seq2attn", "int8"), ("ctranslate2", "fp32"),
            ("ctranslate2", "int8")]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.engines", description=__doc__.split("\n\n")[0])
    p.add_argument("--transformer", type=Path, help="a trained Transformer model directory")
    p.add_argument("--rnn", type=Path, help="a trained RNN model directory")
    p.add_argument("--data-dir", type=Path, required=True, help="holds multi30k/, e.g. ../shared/corpora")
    p.add_argument("--threads", type=int, default=2, help="threads of every decoding process")
    p.add_argument("--beams", default="1,5", help="comma-separated beam sizes (default: %(default)s)")
    p.add_argument("--precisions", default="fp32,bf16,int8",
                   help="comma-separated precisions to run (bf16 is slow on CPUs without AVX512-BF16/AMX)")
    p.add_argument("--limit", type=int, default=None, help="only the first N test sentences (smoke runs)")
    p.add_argument("--work", type=Path, default=Path("benchmarks/work/engines"), help="exports, outputs, logs")
    p.add_argument("--out", type=Path, default=RESULTS, help="JSON report")
    return p.parse_args(argv)


# --- one measurement, in its own process -------------------------------------------------------
def child(argv: list[str]) -> None:
    """``--child MODEL SRC HYP TIMING PRECISION BEAM THREADS``: decode SRC, write HYP and TIMING."""
    import seq2attn

    model_dir, src, hyp, timing, precision, beam, threads = argv
    model = seq2attn.load(model_dir, device="cpu", threads=int(threads))
    lines = read_lines(Path(src))
    # the same search on every engine: no length penalty (CTranslate2's is not GNMT's), no attention
    # (the text is what is timed; CTranslate2 returns attention only when asked)
    options = {"beam": int(beam), "precision": precision, "alpha": 0.0, "attention": False}
    model.translate(lines[:WARMUP], **options)
    start = time.perf_counter()
    out = model.translate(lines, **options)
    seconds = time.perf_counter() - start
    Path(hyp).write_text("".join(t.hyp + "\n" for t in out), encoding="utf-8")
    Path(timing).write_text(json.dumps({"seconds": seconds, "sentences": len(lines),
                                        "tokens": sum(len(t.hyp_tokens) for t in out)}), encoding="utf-8")


def figures(timing: dict, *, bleu: float, peak_rss_bytes: int) -> dict:
    s = timing["seconds"]
    return {"seconds": round(s, 3), "sent_per_s": round(timing["sentences"] / s, 1),
            "tokens_per_s": round(timing["tokens"] / s, 1), "bleu": round(bleu, 2),
            "peak_rss_gib": round(peak_rss_bytes / GIB, 3)}


def measure(model_dir: Path, src: Path, ref: Path, *, name: str, precision: str, beam: int, args) -> dict:
    from benchmarks.common import bleu

    run = args.work / f"{name}-{precision}-beam{beam}"
    cmd = [sys.executable, "-m", "benchmarks.engines", "--child", str(model_dir), str(src), str(run) + ".hyp",
           str(run) + ".json", precision, str(beam), str(args.threads)]
    result = run_child(cmd, log=Path(str(run) + ".log"), env=thread_env(args.threads))
    check(result, f"decoding {name} {precision} beam {beam}")
    timing = json.loads(Path(str(run) + ".json").read_text())
    return figures(timing, bleu=bleu(Path(str(run) + ".hyp"), ref), peak_rss_bytes=result.peak_rss_bytes)


# --- the harness -------------------------------------------------------------------------------
def test_files(args, langs: tuple[str, str] = ("de", "en")) -> tuple[Path, Path]:
    """Multi30k test_2016_flickr in the direction ``langs`` (source, target), as two files in ``args.work``."""
    base = find_multi30k(args.data_dir)
    src, ref = (split_lines(base, "test", lang, args.limit) for lang in langs)
    args.work.mkdir(parents=True, exist_ok=True)
    paths = args.work / f"test.{langs[0]}", args.work / f"test.{langs[1]}"
    for path, lines in zip(paths, (src, ref)):
        path.write_text("".join(x + "\n" for x in lines), encoding="utf-8")
    return paths


def exports(model_dir: Path, work: Path) -> dict[str, Path]:
    """float32 and int8 CTranslate2 exports of a Transformer (made once, kept in ``work``)."""
    from seq2attn.inference.export import export_ctranslate2

    out = {}
    for precision, quantization in (("fp32", None), ("int8", "int8")):
        out[precision] = work / f"ct2-{precision}"
        if not out[precision].exists():
            export_ctranslate2(model_dir, out[precision], quantization=quantization)
    return out


def table(rows: list[dict]) -> str:
    head = ("| model | engine | precision | beam | sent/s | tokens/s | BLEU | peak RSS (GiB) |\n"
            "|---|---|---|---:|---:|---:|---:|---:|\n")
    return head + "".join(
        f"| {r['model']} | {r['engine']} | {r['precision']} | {r['beam']} | {r['sent_per_s']:,.1f} | "
        f"{r['tokens_per_s']:,.0f} | {r['bleu']:.2f} | {r['peak_rss_gib']:.3f} |\n" for r in rows)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        child(argv[1:])
        return
    args = parse_args(argv)
    src, ref = test_files(args)
    rows = []
    for name, model_dir in (("transformer", args.transformer), ("rnn", args.rnn)):
        if model_dir is None:
            continue
        ct2 = exports(model_dir, args.work / name) if name == "transformer" else {}
        for engine, precision in SETTINGS:
            if (engine == "ctranslate2" and not ct2) or precision not in args.precisions.split(","):
                continue
            target = ct2[precision] if engine == "ctranslate2" else model_dir
            # a CTranslate2 export computes in the type of its weights ("fp32" = as exported)
            run_precision = "fp32" if engine == "ctranslate2" else precision
            for beam in (int(b) for b in args.beams.split(",")):
                row = {"model": name, "engine": engine, "precision": precision, "beam": beam,
                       **measure(target, src, ref, name=f"{name}-{engine}", precision=run_precision, beam=beam,
                                 args=args)}
                print(f"{name} {engine} {precision} beam {beam}: {row['sent_per_s']} sent/s, BLEU {row['bleu']}",
                      file=sys.stderr)
                rows.append(row)
                report = {"command": "python -m benchmarks.engines " + " ".join(argv),
                          "machine": machine_info(args.threads), "sentences": len(read_lines(src)), "results": rows}
                args.out.parent.mkdir(parents=True, exist_ok=True)
                args.out.write_text(json.dumps(report, indent=2) + "\n")  # rewritten after each run
    print(table(rows), end="")


if __name__ == "__main__":
    main()
