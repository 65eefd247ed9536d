"""benchmarks/seq2attn_side.py: seq2attn's metrics read back, and the Luong row's size against
JoeyNMT's."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks import seq2attn_side

RESULTS = Path(__file__).resolve().parents[1] / "results"


def test_seq2attn_train_rates_leave_out_the_window_after_a_validation():
    rows = [{"kind": "train", "step": s, "tokens_per_s": float(s)} for s in (10, 20, 30)]
    rows.insert(2, {"kind": "valid", "step": 20, "bleu": 1.0})
    assert seq2attn_side.train_rates(rows, first=0, last=30) == [10.0, 20.0]
    assert seq2attn_side.train_rates(rows, first=10, last=20) == [20.0]
    assert seq2attn_side.dev_bleu_at(rows, 20) == 1.0 and seq2attn_side.dev_bleu_at(rows, 30) is None


def measured_joeynmt_params(model: str) -> set[int]:
    """JoeyNMT's parameter counts for ``model`` as its runs logged them ("Total params", kept in the
    results JSON), over every committed run with the benchmark's 8,000-piece vocabulary."""
    found = set()
    for path in RESULTS.glob("*.json"):
        res = json.loads(path.read_text())
        if not isinstance(res.get("models"), dict) or res.get("settings", {}).get("vocab_size") != 8000:
            continue
        params = res["models"].get(model, {}).get("joeynmt", {}).get("params")
        if params is not None:
            found.add(params)
    return found


def test_luong_row_config_matches_joeynmt_size():
    from benchmarks import seq2attn_side as s2a
    from seq2attn.config import resolve_config
    from seq2attn.nn.models import build_model, count_parameters

    assert s2a.unavailable("rnn-luong") is None
    cfg = resolve_config(file=s2a.config_path("rnn-luong"))
    assert (cfg.model.decoder, cfg.model.input_feeding, cfg.model.attention) == ("luong", True, "additive")
    vocab = 8000
    params = count_parameters(build_model(cfg.model, src_vocab=vocab, tgt_vocab=vocab, joint=True))
    (joey,) = measured_joeynmt_params("rnn")  # every run logged the same count for joeynmt-rnn.yaml
    # the difference is our output layer's bias (one per target type) less JoeyNMT's
    # attentional layer's bias (one per decoder unit), which we do not have
    assert params - joey == vocab - cfg.model.dec_hidden_size
