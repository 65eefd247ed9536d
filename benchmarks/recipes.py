"""One row of the recipe results table (docs/recipes.md, README "Results") from a trained model
directory: the length penalty chosen on dev, then test_2016_flickr scored once.

    python -m benchmarks.recipes --model runs/de-en-transformer --data-dir ../shared/corpora \
        --out benchmarks/results/recipes/de-en-transformer.json

Steps, all through ``seq2attn.load`` (the weights ``translate`` would use: the better of best
and averaged by dev BLEU):

1. dev (Multi30k val) with beam --beam for each --alphas value; the alpha with the highest dev
   BLEU is chosen (test is never looked at for this);
2. dev with the same beam and alpha through the best and the averaged checkpoint, when both
   exist (what averaging gives under beam search);
3. test_2016_flickr greedy and with beam --beam at the chosen alpha: BLEU and chrF (sacrebleu
   defaults: 13a, cased, detokenized), the length ratio, and beside them lowercased BLEU
   (``sacrebleu -lc``; papers on Multi30k score lowercased Moses-tokenized text, so comparisons
   with them are approximate). The report holds both BLEU signatures.

The training side (steps, minutes, dev BLEU per validation, tokens/s) comes from the model's
metrics.jsonl. Writes a JSON report and prints the Markdown row on stdout.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from benchmarks.common import find_multi30k, machine_info, split_lines


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.recipes", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, required=True, help="a trained model directory")
    p.add_argument("--data-dir", type=Path, required=True, help="holds multi30k/, e.g. ../shared/corpora")
    p.add_argument("--alphas", default="0,0.6,1.0,1.4,1.8,2.2,2.6,3.0",
                   help="length penalties tried on dev (default: %(default)s)")
    p.add_argument("--beam", type=int, default=5, help="beam size (default: %(default)s)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for decoding (default: torch's)")
    p.add_argument("--limit", type=int, default=None, help="only the first N dev and test sentences (smoke runs)")
    p.add_argument("--out", type=Path, required=True, help="JSON report")
    return p.parse_args(argv)


def scores(hyps: list[str], refs: list[str]) -> dict:
    """Cased sacreBLEU (13a, the primary figure), lowercased BLEU beside it, chrF, the length ratio."""
    import sacrebleu

    b = sacrebleu.corpus_bleu(hyps, [refs])
    lc = sacrebleu.corpus_bleu(hyps, [refs], lowercase=True)
    return {"bleu": round(b.score, 2), "bleu_lc": round(lc.score, 2),
            "chrf": round(sacrebleu.corpus_chrf(hyps, [refs]).score, 2), "length_ratio": round(b.sys_len / b.ref_len, 3)}


def signatures() -> dict[str, str]:
    """sacreBLEU's signatures of the two BLEU figures ``scores`` reports."""
    from sacrebleu.metrics import BLEU

    out = {}
    for name, bleu in (("bleu", BLEU()), ("bleu_lc", BLEU(lowercase=True))):
        bleu.corpus_score(["x"], [["x"]])  # the signature names the number of references: one
        out[name] = str(bleu.get_signature())
    return out


def decode(model, sources: list[str], refs: list[str], **options) -> dict:
    start = time.perf_counter()
    out = model.translate(sources, attention=False, **options)
    seconds = time.perf_counter() - start
    return {**scores([t.hyp for t in out], refs), "seconds": round(seconds, 1),
            "sent_per_s": round(len(sources) / seconds, 1)}


def training(directory: Path) -> dict:
    """What metrics.jsonl says of the run: validations, the averaged row, steps, minutes, speed."""
    rows = [json.loads(line) for line in (directory / "metrics.jsonl").read_text().splitlines() if line.strip()]
    train = [r for r in rows if r.get("kind") == "train"]
    valid = [{k: r.get(k) for k in ("step", "minutes", "bleu", "chrf", "loss", "valid_seconds")}
             for r in rows if r.get("kind") == "valid"]
    averaged = [r for r in rows if r.get("kind") == "averaged"]
    return {"steps": max((r["step"] for r in train + valid if r.get("step") is not None), default=None),
            "minutes": max([r["minutes"] for r in train + valid if r.get("minutes") is not None], default=None),
            "median_target_tokens_per_s": statistics.median(r["tokens_per_s"] for r in train) if train else None,
            "validations": valid,
            "best_dev_bleu": max((v["bleu"] for v in valid if v["bleu"] is not None), default=None),
            "averaged": {k: averaged[-1].get(k) for k in ("steps", "dev_bleu", "dev_chrf", "dev_loss")} if averaged else None}


def main(argv: list[str] | None = None) -> None:
    import seq2attn

    args = parse_args(argv)
    model = seq2attn.load(args.model, device="cpu", threads=args.threads)
    if model.engine.name != "torch":
        sys.exit(f"benchmarks.recipes: {args.model} is an export; give the trained model directory")
    src, tgt = model.cfg.data.src_lang, model.cfg.data.tgt_lang
    base = find_multi30k(args.data_dir)
    dev_src, dev_ref = (split_lines(base, "dev", lang, args.limit) for lang in (src, tgt))
    test_src, test_ref = (split_lines(base, "test", lang, args.limit) for lang in (src, tgt))
    report = {"command": "python -m benchmarks.recipes " + " ".join(sys.argv[1:] if argv is None else argv),
              "machine": machine_info(args.threads or 0), "model": str(args.model), "pair": f"{src}-{tgt}",
              "backend": model.cfg.model.backend, "params": sum(p.numel() for p in model.engine.loaded.model.parameters()),
              "weights": model.engine.loaded.which, "training": training(args.model), "signatures": signatures(),
              "dev": {}, "test": {}}

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    def save() -> None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")

    for alpha in (float(a) for a in args.alphas.split(",")):
        report["dev"][f"beam{args.beam}_alpha{alpha:g}"] = row = decode(model, dev_src, dev_ref, beam=args.beam,
                                                                        alpha=alpha)
        say(f"dev beam {args.beam} alpha {alpha:g}: BLEU {row['bleu']} (lowercased {row['bleu_lc']}, "
            f"ratio {row['length_ratio']})")
        save()
    best_key = max((k for k in report["dev"]), key=lambda k: report["dev"][k]["bleu"])
    alpha = float(best_key.split("alpha")[1])
    report["chosen_alpha"] = alpha
    report["dev"]["greedy"] = decode(model, dev_src, dev_ref, beam=1)
    manifest = json.loads((args.model / "manifest.json").read_text())
    if "averaged" in manifest.get("weights", {}):
        for which in ("best", "averaged"):
            if which == report["weights"]:
                report["dev"][f"{which}_beam{args.beam}"] = report["dev"][best_key]
                continue
            other = seq2attn.load(args.model, device="cpu", threads=args.threads, weights=which)
            report["dev"][f"{which}_beam{args.beam}"] = decode(other, dev_src, dev_ref, beam=args.beam, alpha=alpha)
            say(f"dev {which} beam {args.beam} alpha {alpha:g}: BLEU {report['dev'][f'{which}_beam{args.beam}']['bleu']}")
    save()
    report["test"]["greedy"] = decode(model, test_src, test_ref, beam=1)
    report["test"][f"beam{args.beam}"] = decode(model, test_src, test_ref, beam=args.beam, alpha=alpha)
    save()
    t, tr = report["test"], report["training"]
    print(f"| {src}->{tgt} | {report['backend']} | {report['params'] / 1e6:.1f}M | {tr['minutes'] or 0:.0f} | "
          f"{report['dev'][best_key]['bleu']:.1f} | {t['greedy']['bleu']:.1f} | {t[f'beam{args.beam}']['bleu']:.1f} "
          f"(lowercased {t[f'beam{args.beam}']['bleu_lc']:.1f}) | "
          f"{t[f'beam{args.beam}']['chrf']:.1f} | alpha {alpha:g}, {report['weights']} weights |")


if __name__ == "__main__":
    main()
