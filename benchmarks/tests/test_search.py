"""benchmarks/search.py (issue 23, item 3): every shipped candidate is a valid change of its preset,
the probe's speed becomes each candidate's step count, and a probe + run + table round trip on a
generated stand-in for Multi30k."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import search
from benchmarks.tests.test_run import fake_multi30k

CONFIGS = Path(search.__file__).resolve().parent / "configs"
SHIPPED = sorted(CONFIGS.glob("search-*.yaml"))


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_every_shipped_candidate_changes_its_preset(path):
    from seq2attn.config import resolve_config
    from seq2attn.text.corpora import CORPORA

    base, cands = search.load_candidates(path, None)
    assert "preset" in cands and cands["preset"] == []
    seen = []
    for name, sets in cands.items():
        cfg = resolve_config(preset=CORPORA["multi30k"].preset_for(base["backend"]), sets=[
            "data.corpus=multi30k", f"data.src_lang={base['src']}", f"data.tgt_lang={base['tgt']}",
            f"model.backend={base['backend']}", *sets])
        assert cfg not in seen, f"{name} resolves to the same config as another candidate"
        seen.append(cfg)


def test_speed_comes_from_the_windows_after_the_first_and_not_after_a_validation():
    rows = [{"kind": "train", "step": 10, "tokens_per_s": 100.0, "target_tokens": 30000},  # start-up: dropped
            {"kind": "train", "step": 20, "tokens_per_s": 2000.0, "target_tokens": 30000},
            {"kind": "train", "step": 30, "tokens_per_s": 3000.0, "target_tokens": 30000},
            {"kind": "valid", "step": 30, "bleu": 1.0},
            {"kind": "train", "step": 40, "tokens_per_s": 50.0, "target_tokens": 30000}]  # its clock ran through it
    speed = search.steps_per_minute(rows)
    assert speed["windows"] == 2 and speed["target_tokens_per_step"] == 3000
    assert speed["steps_per_minute"] == 50.0  # 2,500 tokens/s x 60 / 3,000 per step
    with pytest.raises(ValueError, match="more --probe-steps"):
        search.steps_per_minute(rows[:1])


def test_bad_candidates_are_one_line_errors(tmp_path, capsys):
    bad = tmp_path / "c.yaml"
    bad.write_text("candidates: [a, b]\n")
    argv = ["run", "--candidates", str(bad), "--steps", "5", "--out", str(tmp_path / "o.json")]
    assert search.main(argv) == 2
    assert "needs a 'base' mapping" in capsys.readouterr().err
    good = CONFIGS / "search-de-en-rnn.yaml"
    assert search.main(["run", "--candidates", str(good), "--only", "preset,nope", "--steps", "5",
                        "--out", str(tmp_path / "o.json")]) == 2
    assert "--only nope: not in" in capsys.readouterr().err
    assert search.main(["run", "--candidates", str(good), "--out", str(tmp_path / "o.json")]) == 2
    assert "give --probe PROBE.json or --steps N" in capsys.readouterr().err
    for probe in (tmp_path / "missing.json", bad):  # absent, or not a probe's JSON
        assert search.main(["run", "--candidates", str(good), "--probe", str(probe), "--data-dir", str(tmp_path),
                            "--out", str(tmp_path / "o.json")]) == 2
        assert f"--probe {probe}: not a probe result" in capsys.readouterr().err


def test_candidates_that_cost_the_same_per_step_share_one_pooled_rate():
    cands = {"preset": [], "lr": ["train.lr=0.003"], "ls": ["train.label_smoothing=0", "model.dropout=0.2"],
             "no-dropout": ["model.dropout=0"], "wide": ["model.ff_size=512"]}
    speed = {"preset": {"steps_per_minute": 76.0}, "lr": {"steps_per_minute": 86.0},
             "ls": {"steps_per_minute": 74.0}, "no-dropout": {"steps_per_minute": 90.0},
             "wide": {"steps_per_minute": 69.4}}
    plan = {n: (p["steps"], p["rate"], p["pooled"]) for n, p in search.step_plan(cands, speed, minutes=100).items()}
    assert plan["preset"] == plan["lr"] == plan["ls"] == (7600, 76.0, True)  # the median of 76, 86, 74
    assert plan["no-dropout"] == (9000, 90.0, False)  # a dropout of 0 skips work: its own figure
    assert plan["wide"] == (6940, 69.4, False)
    assert not search.cost_neutral(["model.dropout=0.00"]) and search.cost_neutral(["model.dropout=0.3"])
    # the pool is the whole probe's (its own sets), so a subset plans what the whole file would and a
    # cost-neutral candidate added after the probe takes the pooled rate; any other unprobed one is an error
    probed = {n: {**v, "sets": cands[n]} for n, v in speed.items()}
    subset = {"lr": ["train.lr=0.003"], "post": ["model.norm=post", "train.warmup_steps=2000"]}
    assert search.step_plan(subset, probed, minutes=1) == {n: {"steps": 76, "rate": 76.0, "pooled": True} for n in subset}
    lone = {"lr": speed["lr"]}
    assert search.step_plan({"lr": ["train.lr=0.003"]}, lone, minutes=1) == {"lr": {"steps": 86, "rate": 86.0, "pooled": False}}
    for name, sets in (("x", ["model.ff_size=128"]), ("y", [])):
        with pytest.raises(ValueError, match=f"no probe figure for candidate '{name}'"):
            search.step_plan({name: sets}, lone, minutes=1)


@pytest.mark.slow
def test_probe_then_run_then_table(tmp_path, capsys):
    data = fake_multi30k(tmp_path / "data")
    cands = tmp_path / "c.yaml"
    cands.write_text("base: {src: de, tgt: en, backend: transformer}\ncandidates:\n  preset: []\n"
                     "  dropout-0: [model.dropout=0]\n")
    tiny = ["model.emb_size=16", "model.ff_size=32", "model.enc_layers=1", "model.dec_layers=1",
            "tokenizer.vocab_size=40", "train.batch_tokens=300", "train.validate_every=10"]
    common = ["--candidates", str(cands), "--data-dir", str(data), "--work", str(tmp_path / "w"),
              *[x for s in tiny for x in ("--set", s)]]
    probe = tmp_path / "probe.json"
    assert search.main(["probe", *common, "--threads", "1", "--probe-steps", "30", "--out", str(probe)]) == 0
    speed = json.loads(probe.read_text())["candidates"]
    assert set(speed) == {"preset", "dropout-0"}
    assert all(c["steps_per_minute"] > 0 and c["windows"] == 2 and c["parameters"] > 0 for c in speed.values())
    out = tmp_path / "search.json"
    # a budget of a few seconds of that CPU: each candidate's own step count
    assert search.main(["run", *common, "--probe", str(probe), "--minutes", "0.05", "--device", "cpu",
                        "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    for name, c in res["candidates"].items():
        assert c["steps_planned"] == max(1, round(speed[name]["steps_per_minute"] * 0.05))
        assert c["steps"] == c["steps_planned"] and c["dev_greedy_best"] is not None
        assert c["alpha"] is not None and c["dev_beam"] is not None  # the preset's tune_alpha ran
    capsys.readouterr()
    assert search.main(["table", str(out)]) == 0
    table = capsys.readouterr().err
    assert "dropout-0 | model.dropout=0 |" in table and "preset | (preset) |" in table


def test_a_candidate_stopped_early_keeps_its_curve_in_the_table():
    rows = [{"kind": "train", "step": 200, "loss": 6.0}, {"kind": "valid", "step": 200, "bleu": 3.5, "loss": 5.3},
            {"kind": "valid", "step": 400, "bleu": 9.25, "loss": 4.2}, {"kind": "train", "step": 450, "loss": 4.1}]
    entry = {"sets": ["model.norm=post"], "steps_planned": 5598, "parameters": 2349056, **search.summary(rows),
             "error": "seq2attn train exited 1 at step 450; see run.log"}
    assert entry["steps"] == 450 and entry["dev_greedy_best"] == 9.25 and [c["step"] for c in entry["curve"]] == [200, 400]
    done = {"sets": [], "steps_planned": 5598, "parameters": 2349568, **search.summary(rows[:3])}
    table = search.render([{"candidates": {"stopped": entry, "preset": done}}]).splitlines()
    assert table[2].split(" | ") == ["stopped", "model.norm=post", "2,349,056", "", "stopped at 450", "9.25", "", "",
                                     "4.200"]
    assert table[3].split(" | ")[:6] == ["preset", "(preset)", "2,349,568", "-", "400", "9.25"]
