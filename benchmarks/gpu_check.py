"""The GPU check: train the Multi30k Transformer for a fixed number of minutes and write one JSON
with the GPU's name, training tokens/s, peak GPU memory and greedy test BLEU.

    python -m benchmarks.gpu_check --out gpu_check.json --minutes 4 --data-dir ../shared/corpora
    GPU_CHECK_TINY=1 python -m benchmarks.gpu_check --out /tmp/gpu_check.json   # CPU smoke run

benchmarks/gpu_check.sh runs this after the CUDA-marked tests. ``--tiny`` (or GPU_CHECK_TINY=1)
shrinks the model, the step budget and the test set so that the whole path runs on a CPU in a minute.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TINY_SETS = ["tokenizer.vocab_size=1000", "tokenizer.train_lines=5000", "model.emb_size=64", "model.ff_size=128",
             "model.enc_layers=1", "model.dec_layers=1", "train.max_steps=20", "train.batch_tokens=1024",
             "train.log_every=2"]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.gpu_check", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="JSON report to write")
    p.add_argument("--minutes", type=float, default=4.0, help="training budget (default %(default)s)")
    p.add_argument("--data-dir", type=Path, default=None, help="folder holding multi30k/ (default: "
                   "../shared/corpora or shared/corpora next to the repository)")
    p.add_argument("--precision", default="bf16", choices=("fp32", "bf16", "fp16"))
    p.add_argument("--work", type=Path, default=ROOT / "benchmarks" / "work" / "gpu_check")
    p.add_argument("--tiny", action="store_true", default=os.environ.get("GPU_CHECK_TINY") == "1")
    return p.parse_args(argv)


def find_data(given: Path | None) -> Path:
    for path in ([given] if given else [ROOT.parent / "shared" / "corpora", ROOT / "shared" / "corpora"]):
        if (path / "multi30k" / "train.de.gz").is_file():
            return path
    sys.exit(f"gpu_check: no multi30k/train.de.gz under {given or 'shared/corpora'}; pass --data-dir")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    from seq2attn.config import resolve_config
    from seq2attn.inference.translate import translate
    from seq2attn.modeldir.checkpoint import load
    from seq2attn.run.train import train
    from seq2attn.text.corpora import load_corpus
    from seq2attn.text.metrics import corpus_scores

    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    precision = args.precision if cuda or args.precision == "fp32" else "bf16" if args.precision == "bf16" else "fp32"
    data_dir = find_data(args.data_dir)
    print(f"gpu_check: torch {torch.__version__}, CUDA {torch.version.cuda}, device {device}"
          f"{' (' + torch.cuda.get_device_name() + ')' if cuda else ''}, data {data_dir}", flush=True)
    shutil.rmtree(args.work, ignore_errors=True)
    model_dir = args.work / "model"
    sets = ["train.validate_every=100000", "train.attention_image=false", "train.log_every=20",
            "data.dev_size=200", f"train.precision={precision}", f"train.device={device}",
            *(TINY_SETS if args.tiny else [])]
    cfg = resolve_config(file=HERE / "configs" / "seq2attn-transformer.yaml", sets=sets, flags={
        "data": {"corpus": "multi30k", "src_lang": "de", "tgt_lang": "en", "data_dir": str(data_dir)},
        "train": {"max_minutes": args.minutes}})
    start = time.monotonic()
    state = train(cfg, model_dir)
    wall = time.monotonic() - start
    rows = [json.loads(line) for line in (model_dir / "metrics.jsonl").read_text().splitlines()]
    steady = [r for r in rows if r["kind"] == "train"][1:] or [r for r in rows if r["kind"] == "train"]

    loaded = load(model_dir, which="last", device=device)
    test = load_corpus("multi30k", src_lang="de", tgt_lang="en", data_dir=data_dir).test
    if args.tiny:
        test = test.cut(0, 100)
    t0 = time.monotonic()
    hyps = [t.hyp for t in translate(loaded, test.src, decode=loaded.cfg.decode, device=device).translations]
    decode_s = time.monotonic() - t0
    bleu = corpus_scores(hyps, [test.tgt], metrics=("bleu",))[0]
    report = {
        "command": " ".join(["python -m benchmarks.gpu_check", *(argv if argv is not None else sys.argv[1:])]),
        "tiny": args.tiny,
        "device": torch.cuda.get_device_name() if cuda else f"cpu ({platform.processor() or platform.machine()})",
        "torch": torch.__version__, "cuda": torch.version.cuda, "precision": precision,
        "minutes_budget": args.minutes, "train_wall_s": round(wall, 1), "steps": state.step,
        "train_tokens_per_s": round(sum(r["tokens_per_s"] for r in steady) / max(len(steady), 1), 1),
        "peak_gpu_mib_training": max((r.get("gpu_peak_mib", 0.0) for r in rows), default=0.0) if cuda else None,
        "peak_gpu_mib_process": round(torch.cuda.max_memory_allocated() / 2**20, 1) if cuda else None,
        "test_sentences": len(test), "test_bleu_greedy": round(bleu.score, 2), "bleu_signature": bleu.signature,
        "test_decode_s": round(decode_s, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
