"""The Python API: `seq2attn.load` and the Model's translate / align, and the docs example."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

import pytest
import torch

import seq2attn
from seq2attn.inference.translate import translate as library_translate
from seq2attn.modeldir.checkpoint import load as load_checkpoint

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def model(tiny_model):
    return seq2attn.load(tiny_model, device="cpu")


def test_docs_example_runs(tiny_model, tmp_path, capsys):
    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    example = re.search(r"```python\n(.*?)```", text, re.DOTALL).group(1)
    assert "runs/dates-demo" in example
    script = tmp_path / "example.py"
    script.write_text(example.replace("runs/dates-demo", str(tiny_model)), encoding="utf-8")
    runpy.run_path(str(script))
    out = capsys.readouterr().out
    assert "engine='torch'" in out and "refused: decode.nbest=3" in out


def test_exports():
    assert set(seq2attn.__all__) <= set(dir(seq2attn)) | {"Model", "Translation", "load"}
    for name in seq2attn.__all__:
        assert getattr(seq2attn, name) is not None
    assert issubclass(seq2attn.ConfigError, seq2attn.Seq2AttnError)


def test_translate_is_the_library_search_with_saved_defaults(model, tiny_model):
    lines = ["a b c d", "", "e f g"]
    loaded = load_checkpoint(tiny_model)
    expected = library_translate(loaded, lines, decode=loaded.cfg.decode).translations
    got = model.translate(lines)
    assert [t.hyp for t in got] == [t.hyp for t in expected] and got[1].hyp == ""
    assert [t.score for t in got] == pytest.approx([t.score for t in expected])
    one = model.translate("a b c d", beam=3)
    assert isinstance(one, seq2attn.Translation) and one.text == one.hyp
    assert torch.allclose(one.attention.sum(-1), torch.ones(len(one.hyp_tokens)))
    assert all(0 <= i < len(one.src_tokens) - 1 and 0 <= j < len(one.hyp_tokens) for i, j in one.links)


def test_nbest_and_sampling_keywords(model):
    t = model.translate("a b c", beam=4, nbest=4)
    assert len(t.nbest) == 4 and t.nbest[0] is t
    assert [x.norm_score for x in t.nbest] == sorted((x.norm_score for x in t.nbest), reverse=True)
    a = model.translate(["a b c"] * 3, sample=True, seed=5)
    assert [x.hyp for x in a] == [x.hyp for x in model.translate(["a b c"] * 3, sample=True, seed=5)]


def test_align_forces_the_given_target(model):
    t = model.align("a b c", "c b a")
    assert t.hyp == "c b a" and t.attention.shape == (len(t.hyp_tokens), len(t.src_tokens))
    both = model.align(["a b", "c d e"], ["b a", "e d c"])
    assert [x.hyp for x in both] == ["b a", "e d c"]
    words = model.word_alignment(t)
    assert words.src == ["a", "b", "c"] and words.tgt == ["c", "b", "a"]


@pytest.mark.parametrize("call, needle", [
    (lambda m: m.translate("a", beam=0), "decode.beam_size"),
    (lambda m: m.translate("a", beam=2, nbest=3), "decode.nbest=3"),
    (lambda m: m.translate("a", top_p=1.5), "decode.top_p"),
    (lambda m: m.translate("a", precision="fp16"), "fp16 needs a CUDA device"),
    (lambda m: m.align(["a"], ["a", "b"]), "1 sources but 2 targets"),
    (lambda m: m.align("a", ["a"]), "two strings or two lists"),
])
def test_bad_settings_raise_one_error_type(model, call, needle):
    with pytest.raises(seq2attn.Seq2AttnError, match=re.escape(needle)):
        call(model)


@pytest.mark.parametrize("kwargs, needle", [
    ({"device": "tpu"}, "--device"), ({"threads": 0}, "--threads"),
])
def test_bad_load_arguments(tiny_model, kwargs, needle):
    with pytest.raises(seq2attn.ConfigError, match=needle):
        seq2attn.load(tiny_model, **kwargs)


def test_load_refuses_what_is_not_a_model(tmp_path):
    with pytest.raises(seq2attn.CheckpointError, match="no such model directory"):
        seq2attn.load(tmp_path / "none")
