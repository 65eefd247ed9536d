"""benchmarks/ct2_chunking.py: the engine's chunked decoding against one call with a per-sentence
post-check, on a tiny exported Transformer whose outputs mostly reach their limit."""

from __future__ import annotations

import pytest

pytest.importorskip("ctranslate2")


def test_the_table_names_the_ratio_and_whether_the_outputs_agree():
    from benchmarks.ct2_chunking import compare, table

    assert compare([["a"], ["b", "c"], []], [["a"], ["b"], []]) == {"identical": False, "differing_sentences": 1,
                                                                   "differ": [1]}
    mode = lambda v: {"sent_per_s": v, "sent_per_s_runs": [v, v + 10.0]}
    row = {"precision": "int8", "threads": 2, "beam": 5, "identical": True, "cut_by_post_check": 3,
           "chunked": mode(100.0), "one call": mode(150.0)}
    assert table([row]).splitlines()[-1] == "| int8 | 2 | 5 | 100.0 (100.0-110.0) | 150.0 (150.0-160.0) | 1.50x | yes | 3 |"


@pytest.mark.slow
def test_greedy_in_one_call_cut_per_sentence_equals_the_chunked_engine(tmp_path_factory, reverse_files):
    """Greedy search: an output cut at its own limit is what a run at that limit gives, so one call
    at the longest limit plus the post-check gives the engine's pieces (limits of 0.5 x source + 2
    cut most of the reverse corpus's outputs)."""
    from benchmarks.ct2_chunking import measure
    from seq2attn.config import resolve_config
    from seq2attn.inference.export import export_ctranslate2
    from seq2attn.run.train import train
    from seq2attn.text.corpora import CORPORA

    d = tmp_path_factory.mktemp("chunking")
    files = {"data": {"train": [str(p) for p in reverse_files["train"]], "dev": [str(p) for p in reverse_files["dev"]]}}
    cfg = resolve_config(preset=CORPORA["reverse"].preset, flags=files, sets=[
        "model.backend=transformer", "model.emb_size=32", "model.ff_size=64", "model.enc_layers=1",
        "model.dec_layers=1", "model.heads=2", "train.max_steps=60", "train.validate_every=60",
        "data.dev_size=20", "train.attention_image=false", "decode.batch_tokens=200"])
    train(cfg, d / "m")
    export_ctranslate2(d / "m", d / "e")
    texts = reverse_files["dev"][0].read_text().splitlines()[:120]
    row = measure(d / "e", texts, threads=1, beam=1, repeats=1, max_len=(0.5, 2))
    assert row["identical"] and row["cut_by_post_check"] > 20 and row["max_len"] == [0.5, 2]
    assert row["chunked"]["sent_per_s"] > 0 and len(row["one call"]["sent_per_s_runs"]) == 1
