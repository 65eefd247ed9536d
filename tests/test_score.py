"""`score` and `evaluate`: equal to the sacrebleu command line, per-line scores, the paired
bootstrap test, and translate-then-score in one command."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from helpers import run

from seq2attn.text.metrics import corpus_scores, paired_bootstrap, sentence_scores

HYP = ["the cat sat on the mat .", "a dog was barking loudly at night", "he said : it's fine !",
       "Twenty-one people came , maybe more .", "no", "the quick brown fox jumps over the lazy dog"]
REF = ["the cat sat on a mat .", "a dog barked loudly all night", "he said it is fine !",
       "21 people came , perhaps more .", "no", "a quick brown fox jumped over the lazy dog"]
REF2 = ["there was a cat on the mat .", "a dog was barking in the night", "he said : fine !",
        "twenty-one people came , maybe more", "nope", "the fast brown fox jumps over a lazy dog"]


def write(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


@pytest.fixture
def files(tmp_path):
    return write(tmp_path / "hyp", HYP), write(tmp_path / "ref", REF), write(tmp_path / "ref2", REF2)


def sacrebleu_cli(hyp, *refs):
    out = subprocess.run([sys.executable, "-m", "sacrebleu", *map(str, refs), "-i", str(hyp), "-m", "bleu", "chrf",
                          "ter", "-b", "-w", "2"], capture_output=True, text=True, check=True).stdout
    return [float(x) for x in json.loads(out)]  # with several metrics, -b prints a JSON list


@pytest.mark.parametrize("n_refs", [1, 2])
def test_score_equals_the_sacrebleu_command_line(files, n_refs):
    hyp, *refs = files
    refs = refs[:n_refs]
    result = run("score", hyp, *refs, "--metrics", "bleu,chrf,ter", "--json")
    assert result.exit_code == 0, result.output
    ours = json.loads(result.stdout)
    assert [round(ours[k]["score"], 2) for k in ("BLEU", "chrF2", "TER")] == sacrebleu_cli(hyp, *refs)
    assert ours["BLEU"]["signature"].startswith(f"nrefs:{n_refs}|")


def test_score_text_output_carries_signatures(files):
    hyp, ref, _ = files
    lines = run("score", hyp, ref, "--metrics", "bleu,ter").stdout.splitlines()
    assert lines[0].startswith("BLEU = ") and "tok:13a" in lines[0]
    assert lines[1].startswith("TER = ") and "tok:tercom" in lines[1]


def test_sentence_scores(files):
    hyp, ref, _ = files
    result = run("score", hyp, ref, "--sentence", "--metrics", "bleu,chrf,exact", "--json")
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == len(HYP)
    assert rows[4] == {"BLEU": 100.0, "chrF2": 100.0, "exact": 100.0}  # "no" == "no"
    assert all(0 <= r["BLEU"] < 100 and r["exact"] == 0 for i, r in enumerate(rows) if i != 4)
    text = run("score", hyp, ref, "--sentence").stdout.splitlines()
    assert len(text) == len(HYP) and text[4] == "BLEU=100.00\tchrF2=100.00"


def test_sentence_scores_match_sacrebleu_sentence_level():
    from sacrebleu.metrics import BLEU

    rows = sentence_scores(HYP, [REF], metrics=["bleu"])
    expected = [BLEU(effective_order=True).sentence_score(h, [r]).score for h, r in zip(HYP, REF)]
    assert [r["BLEU"] for r in rows] == pytest.approx(expected)


def test_paired_bootstrap_is_seeded_and_finds_a_clear_difference():
    refs = [REF * 5]
    good, bad = REF * 5, [h.split()[0] for h in HYP] * 5  # perfect vs. one word per line
    first = paired_bootstrap(bad, good, refs, metrics=["bleu", "chrf"], n_samples=200, seed=3)
    again = paired_bootstrap(bad, good, refs, metrics=["bleu", "chrf"], n_samples=200, seed=3)
    assert first == again
    assert [c.name for c in first] == ["BLEU", "chrF2"]
    assert all(c.p_value < 0.05 and c.system == pytest.approx(100.0) for c in first)
    close = HYP * 5
    close = [*close[:-1], close[-1].replace("lazy", "sleepy")]  # one word of 190 differs
    assert paired_bootstrap(HYP * 5, close, refs, metrics=["bleu"], n_samples=200)[0].p_value > 0.05


def test_score_compare_command(files, tmp_path):
    hyp, ref, _ = files
    other = write(tmp_path / "other", REF)
    result = run("score", hyp, ref, "--compare", other, "--samples", "100", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) == {"BLEU", "chrF2"} and data["BLEU"]["system"] == 100.0
    assert 0.0 <= data["BLEU"]["p_value"] <= 1.0 and "bs:100" in data["BLEU"]["signature"]
    text = run("score", hyp, ref, "--compare", other, "--samples", "100").stdout
    assert text.startswith("BLEU\tbaseline ") and "p = " in text


def test_score_errors_are_one_line(files, tmp_path):
    hyp, ref, _ = files
    short = write(tmp_path / "short", ["x"])
    for args, needle in [((hyp, ref, short), "short has 1 lines"), ((hyp, ref, "--compare", short), "1 lines"),
                         ((hyp, ref, "--metrics", "meteor"), "meteor")]:
        result = run("score", *args)
        assert result.exit_code == 1 and needle in result.stderr, result.output
        assert len(result.stderr.strip().splitlines()) == 1


def test_evaluate_translates_then_scores(tiny_model, reverse_files, tmp_path):
    src, ref = reverse_files["dev"]
    out = tmp_path / "hyp"
    result = run("evaluate", "-m", tiny_model, "--src", src, "--ref", ref, "--out", out, "--beam", "1",
                 "--metrics", "bleu,chrf,ter", "--json", "--device", "cpu")
    assert result.exit_code == 0, result.output
    scores = json.loads(result.stdout)
    hyps = out.read_text().splitlines()
    assert len(hyps) == len(src.read_text().splitlines())
    ref_lines = ref.read_text().splitlines()
    expected = {s.name: s.score for s in corpus_scores(hyps, [ref_lines], metrics=["bleu", "chrf", "ter"])}
    assert {k: v["score"] for k, v in scores.items()} == pytest.approx(expected, abs=1e-3)
    # the same numbers as `score` on the written file
    assert json.loads(run("score", out, ref, "--metrics", "bleu,chrf,ter", "--json").stdout) == scores
