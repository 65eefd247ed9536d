"""benchmarks/run.py: the order of the measured runs, the shared JoeyNMT run, argument errors, the
start-up estimate, and a smoke run of the --quick path (seq2attn only, on a tiny generated stand-in
for Multi30k; the JoeyNMT comparison itself never runs in CI)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from seq2attn.text.corpora import generate


def fake_multi30k(root: Path) -> Path:
    d = root / "multi30k"
    d.mkdir(parents=True)
    data = generate("reverse", 260, seed=5)
    parts = {"train": slice(0, 200), "val": slice(200, 230), "test_2016_flickr": slice(230, 260)}
    for name, part in parts.items():
        for lang, lines in (("de", data.src[part]), ("en", data.tgt[part])):
            with gzip.open(d / f"{name}.{lang}.gz", "wt", encoding="utf-8") as f:
                f.write("".join(x + "\n" for x in lines))
    return root


def test_missing_data_or_unknown_model_is_one_line_and_exit_2(tmp_path, capsys):
    from benchmarks.run import main

    assert main(["--data-dir", str(tmp_path), "--no-peer", "--work", str(tmp_path / "w")]) == 2
    assert "no multi30k/train.de.gz" in capsys.readouterr().err
    assert main(["--models", "lstm", "--no-peer"]) == 2
    assert "choose from: rnn, rnn-luong, transformer" in capsys.readouterr().err
    assert main(["--no-peer", "--peer-only"]) == 2
    assert "leave nothing to run" in capsys.readouterr().err
    assert main(["--quick", "--bf16-steps", "30", "--validate-every", "20", "--no-peer"]) == 2
    assert "--validate-every 20; must be >= 1 and divide --bf16-steps 30" in capsys.readouterr().err


def test_decode_only_peer_only_needs_no_seq2attn_model(tmp_path):
    """--decode-only --peer-only asks an earlier run for JoeyNMT's models only."""
    from benchmarks.run import earlier_inputs

    (tmp_path / "data").mkdir()
    for name in ("test.de", "one.de"):
        (tmp_path / "data" / name).write_text("x\n")
    (tmp_path / "joeynmt-rnn").mkdir()
    data, one = earlier_inputs(tmp_path, ["rnn", "rnn-luong"], ours=False, peer=True)
    assert one == tmp_path / "data" / "one" and data["test"] == tmp_path / "data" / "test"
    with pytest.raises(FileNotFoundError, match="seq2attn-rnn"):
        earlier_inputs(tmp_path, ["rnn"], ours=True, peer=True)


def test_both_rnn_rows_share_one_joeynmt_run():
    """JoeyNMT's RNN is Luong-wired: the Bahdanau and the matched Luong seq2attn rows both face it,
    and it is trained and decoded once per harness run."""
    from types import SimpleNamespace

    from benchmarks.run import PEER, _peer_once

    setup, calls = SimpleNamespace(cache={}), []

    def measure():
        calls.append(1)
        return {"train": {"tokens_per_s": 800.0}}

    first = _peer_once("rnn", setup, measure)
    second = _peer_once("rnn-luong", setup, measure)
    assert PEER["rnn-luong"] == "rnn" and len(calls) == 1
    assert first == {"train": {"tokens_per_s": 800.0}} and second == {**first, "same_run_as": "rnn"}
    _peer_once("transformer", setup, measure)
    assert len(calls) == 2


def test_bench_model_interleaves_the_sides_and_shares_the_peer(monkeypatch):
    """The order of the measured runs, with both toolkits replaced by stand-ins: the matmul peak
    before each repeat; per repeat seq2attn as shipped, JoeyNMT, seq2attn at equal padding; the
    headline searches R times, then the capped (secondary) ones once; ratios paired by repeat."""
    from types import SimpleNamespace

    from benchmarks import run

    calls, peaks = [], iter([150.0, 120.0, 140.0] * 3)
    rates = {"s": {2: 1100.0, 3: 1300.0}, "j": {2: 380.0, 3: 500.0}}

    def peak(setup):
        calls.append(("peak",))
        return next(peaks)

    def train(side):
        def f(model, setup, last):  # seq2attn: the peak measured before it; JoeyNMT: its python
            calls.append((side, "train", model))
            rate = 1000.0 if side == "s" else 400.0
            fig = {"train": {"tokens_per_s": rate, "tokens_per_s_runs": [rate]}}
            if side == "s":
                fig["train"].update(flops_per_token=1e8, matmul_peak_fp32_runs=[last])
            return fig
        return f

    def throughput(side):
        def f(model, *rest):
            calls.append((side, "throughput", model, rest[-1]))
            return rates[side][rest[-1]]
        return f

    def equal_padding(model, setup, repeat, padded):
        calls.append(("s", "equal padding", model, repeat))
        return {"tokens_per_s": 500.0 + repeat, "target_tokens_per_step": 3700.0, "peak_rss_gib": 2.0}

    def once(side):
        def f(model, *rest):
            search, repeat = rest[-3], rest[-1]
            calls.append((side, search.name, model, repeat))
            return {"sent_per_s": 10.0 * repeat, "words_per_s": 100.0, "peak_rss_gib": 0.5, "bleu": 1.0}
        return f

    monkeypatch.setattr(run.s2a, "unavailable", lambda model: None)
    monkeypatch.setattr(run, "repeat_peak", peak)
    monkeypatch.setattr(run, "train_seq2attn", train("s"))
    monkeypatch.setattr(run, "train_joey", train("j"))
    monkeypatch.setattr(run, "throughput_seq2attn", throughput("s"))
    monkeypatch.setattr(run, "throughput_joey", throughput("j"))
    monkeypatch.setattr(run, "equal_padding_budget", lambda setup, py: 9472)
    monkeypatch.setattr(run, "equal_padding_seq2attn", equal_padding)
    monkeypatch.setattr(run, "startup_seq2attn", lambda *a: "start")
    monkeypatch.setattr(run, "startup_joey", lambda *a: "start")
    monkeypatch.setattr(run, "decode_once_seq2attn", once("s"))
    monkeypatch.setattr(run, "decode_once_joey", once("j"))
    args = {"repeats": 3, "beam": 5, "peer_only": False, "equal_padding": "on", "max_output_length": 0,
            "shared_cap": 100}
    setup = SimpleNamespace(cache={}, args=SimpleNamespace(**args), peak={"fp32": None})
    entry = run.bench_model("rnn", setup, py=Path("python"))
    assert calls[:12] == [("peak",), ("s", "train", "rnn"), ("j", "train", "rnn"), ("s", "equal padding", "rnn", 1),
                          *[c for r in (2, 3) for c in (("peak",), ("s", "throughput", "rnn", r),
                                                        ("j", "throughput", "rnn", r), ("s", "equal padding", "rnn", r))]]
    assert calls[12:18] == [(side, "greedy", "rnn", r) for r in (1, 2, 3) for side in ("s", "j")]
    assert calls[18:24] == [(side, "beam5", "rnn", r) for r in (1, 2, 3) for side in ("s", "j")]
    assert calls[24:] == [(side, name, "rnn", 1) for name in ("greedy_cap100", "beam5_cap100") for side in ("s", "j")]
    ours, peer = entry["seq2attn"], entry["joeynmt"]
    assert ours["train"]["tokens_per_s_runs"] == [1000.0, 1100.0, 1300.0] and ours["train"]["tokens_per_s"] == 1100.0
    assert ours["train"]["matmul_peak_fp32_runs"] == [150.0, 120.0, 140.0]  # one before each repeat
    assert ours["train"]["peak_fraction"] == round(1100 * 1e8 / 120e9, 3)  # median of 0.667, 0.917, 0.929
    assert peer["train"]["tokens_per_s"] == 400.0 and peer["decode"]["beam5"]["sent_per_s"] == 20.0
    # 1000/400, 1100/380, 1300/500: the median of the pairs (2.6), not the ratio of the medians (2.75)
    assert entry["ratios"]["train_tokens_per_s_fp32"] == 2.6
    assert entry["paired_ratios"]["train_tokens_per_s_fp32"]["runs"] == [2.5, 2.895, 2.6]
    assert ours["train_equal_padding"]["tokens_per_s_runs"] == [501.0, 502.0, 503.0]
    assert entry["ratios"]["train_tokens_per_s_fp32_equal_padding"] == round(501 / 400, 2)  # 1.25, 1.32, 1.01
    assert set(ours["decode"]) == {"greedy", "beam5", "greedy_cap100", "beam5_cap100"}
    # the Luong row faces the same JoeyNMT run: nothing of JoeyNMT runs again
    calls.clear()
    luong = run.bench_model("rnn-luong", setup, py=Path("python"))
    assert all(c[0] in ("s", "peak") for c in calls) and luong["joeynmt"]["same_run_as"] == "rnn"
    assert luong["joeynmt"]["decode"] == peer["decode"]
    # --peer-only: JoeyNMT alone, seq2attn's side says why it is empty
    calls.clear()
    setup = SimpleNamespace(cache={}, args=SimpleNamespace(**{**args, "repeats": 2, "peer_only": True}), peak={})
    entry = run.bench_model("transformer", setup, py=Path("python"))
    assert entry["seq2attn"] == {"unavailable": "not run (--peer-only)"} and all(c[0] in ("j", "peak") for c in calls)
    assert entry["joeynmt"]["decode"]["beam5"]["sent_per_s"] == 15.0


@pytest.mark.slow
def test_quick_run_without_peer_writes_every_figure(tmp_path):
    from benchmarks.run import main

    out = tmp_path / "results.json"
    tiny = ["model.emb_size=16", "model.hidden_size=16", "model.dec_hidden_size=16"]
    argv = ["--data-dir", str(fake_multi30k(tmp_path / "data")), "--quick", "--no-peer", "--models", "rnn",
            "--threads", "1", "--budget-min", "5", "--max-steps", "8", "--bf16-steps", "8", "--validate-every", "8",
            "--bf16", "on", "--warmup-steps", "2",
            "--measure-steps", "6", "--vocab-size", "40", "--batch-tokens", "300", "--work", str(tmp_path / "work"),
            "--out", str(out), "--repeats", "2", "--joey-batch-tokens", "600",  # equal padding without JoeyNMT
            *[x for s in tiny for x in ("--seq2attn-set", s)]]
    assert main(argv) == 0
    res = json.loads(out.read_text())
    assert {"cpu", "cores", "torch", "date"} <= set(res["machine"])
    assert res["matmul_peak_gflops"]["fp32"] > 0 and res["matmul_peak_gflops"]["bf16"] > 0
    ours = res["models"]["rnn"]["seq2attn"]
    assert ours["params"] > 0 and ours["flops_per_target_token"] > 0
    assert ours["train"]["tokens_per_s"] > 0 and 0 < ours["train"]["peak_fraction"]
    assert ours["train"]["peak_rss_gib"] > 0 and ours["budget"]["steps"] == 8
    assert ours["budget"]["target_tokens_per_step"] > 0 and ours["budget"]["validations"] == 1
    assert ours["bf16"]["tokens_per_s"] > 0 and 0 <= ours["bf16"]["dev_bleu"] <= 100
    assert 0 <= ours["bf16"]["fp32_dev_bleu"] <= 100  # the fp32 run validated at the same step
    assert len(ours["train"]["tokens_per_s_runs"]) == 2  # the budget run's window, then the window alone
    greedy = ours["decode"]["greedy"]
    assert greedy["sentences"] == 30 and greedy["sent_per_s"] > 0 and greedy["peak_rss_gib"] > 0
    assert greedy["repeats"] == 2 and len(greedy["sent_per_s_runs"]) == 2 and res["settings"]["repeats"] == 2
    assert 0 <= greedy["bleu"] <= 100
    # issue 27: the peak before each repeat, equal padding (unbucketed.py), own-rule and capped decoding
    assert len(ours["train"]["matmul_peak_fp32_runs"]) == 2 and min(ours["train"]["matmul_peak_fp32_runs"]) > 0
    equal = ours["train_equal_padding"]
    assert equal["batch_tokens"] == 600 and len(equal["tokens_per_s_runs"]) == 2 and equal["tokens_per_s"] > 0
    assert equal["target_tokens_per_step"] > 0 and equal["peak_rss_gib"] > 0
    assert ours["target_pieces_per_sentence"] > 1 and ours["train"]["sentences_per_s"] > 0
    assert set(ours["decode"]) == {"greedy", "beam5", "greedy_cap100", "beam5_cap100"}
    assert greedy["length_rule"] == "own" and ours["decode"]["beam5_cap100"]["length_rule"] == "cap 100"
    assert greedy["weights"] == "last (step 8)" and ours["decode"]["beam5_cap100"]["repeats"] == 1
    assert "joeynmt" not in res["models"]["rnn"]
    names = [t["name"] for t in res["models"]["rnn"]["targets"]]
    assert "train fp32 fraction of matmul peak" in names and len(names) == 10

    # --decode-only: the same models decode again, decoding figures only
    (run_dir,) = (tmp_path / "work" / "runs").iterdir()
    again = tmp_path / "again.json"
    assert main(["--decode-only", str(run_dir), "--no-peer", "--models", "rnn", "--threads", "1",
                 "--out", str(again), "--work", str(tmp_path / "work")]) == 0
    redo = json.loads(again.read_text())["models"]["rnn"]["seq2attn"]
    assert set(redo) == {"decode"} and redo["decode"]["greedy"]["sentences"] == 30
    assert main(["--decode-only", str(tmp_path), "--no-peer", "--models", "rnn", "--out", str(again)]) == 2


@pytest.mark.parametrize("models", ["rnn", "rnn,rnn-luong", "transformer", "rnn,rnn-luong,transformer"])
def test_start_up_estimate_counts_each_measured_run(models):
    """The start-up estimate adds up what the run will do: each side's budget once per model, its
    repeats, JoeyNMT's RNN once for both RNN rows, nothing for a side left out."""
    from benchmarks import run

    def minutes(*argv: str) -> float:
        args = run.parse_args(["--models", models, *argv])
        return run.expected_minutes(args, run.resolve_mode(args), models.split(","))

    names = models.split(",")
    peer_runs = len({run.PEER[m] for m in names})  # rnn-luong faces the rnn row's JoeyNMT run
    full = minutes()
    assert minutes("--no-peer") + minutes("--peer-only") == pytest.approx(full)
    assert minutes("--budget-min", "30") - full == pytest.approx(10 * (len(names) + peer_runs))  # on every run
    assert minutes("--equal-padding", "off") < full and minutes("--shared-cap", "0") < full
    assert minutes("--repeats", "4") > full > minutes("--repeats", "1") > minutes("--quick")
    if "rnn-luong" in names:
        without = [m for m in names if m != "rnn-luong"]
        args = run.parse_args(["--models", ",".join(without)])
        luong_alone = run.parse_args(["--models", "rnn-luong", "--no-peer"])
        assert full == pytest.approx(run.expected_minutes(args, run.resolve_mode(args), without)
                                     + run.expected_minutes(luong_alone, run.resolve_mode(luong_alone), ["rnn-luong"]))
