"""``seq2attn export --to ctranslate2``: a trained Transformer as a CTranslate2 model directory.

The model is described with CTranslate2's Python specs (``TransformerSpec``) and our weights are
put into it one tensor at a time, the way CTranslate2's own OpenNMT-py and fairseq converters do:

    ours                                      CTranslate2 spec
    src_embed.tokens / tgt_embed.tokens       encoder.embeddings / decoder.embeddings (scaled by sqrt(D))
    sinusoids(max_positions) or .learned      {encoder,decoder}.position_encodings.encodings
    encoder[i].self_attn.{q,k,v}_proj         encoder.layer[i].self_attention.linear[0] (fused q|k|v)
    encoder[i].self_attn.out_proj             encoder.layer[i].self_attention.linear[1]
    encoder[i].r_attn.norm / r_ff.norm        .self_attention.layer_norm / .ffn.layer_norm
    encoder[i].ff.net.0 / net.3               .ffn.linear_0 / .ffn.linear_1
    decoder[i].cross_attn.q_proj              decoder.layer[i].attention.linear[0]
    decoder[i].cross_attn.{k,v}_proj          decoder.layer[i].attention.linear[1] (fused k|v)
    decoder[i].r_cross.norm                   decoder.layer[i].attention.layer_norm
    enc_norm / dec_norm (pre-norm only)       encoder.layer_norm / decoder.layer_norm
    output                                    decoder.projection

Pre-norm and post-norm layers use the same names: CTranslate2's ``pre_norm`` flag decides where
each layer norm sits, exactly as ``model.norm`` does here. The export directory also holds our
tokenizer, our config and ``seq2attn-export.json``, which is how ``seq2attn.load`` recognizes it.
The config's ``decode`` section is the model's, except ``alpha``: CTranslate2's length penalty is
not GNMT's, so an export decodes with alpha 0 unless told otherwise (and then refuses).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import stat
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from seq2attn.errors import CheckpointError, ConfigError, brief
from seq2attn.fsutil import read_limited, regular_sha256, sha256
from seq2attn.modeldir.checkpoint import load, save_config
from seq2attn.nn.models.transformer import TransformerSeq2Seq, sinusoids
from seq2attn.special import BOS, EOS, UNK
from seq2attn.text.tokenizer import TextCodec
from seq2attn.version import __version__

EXPORT_MARKER = "seq2attn-export.json"
EXPORT_FORMAT = "seq2attn-ctranslate2"
QUANTIZATIONS = ("int8", "int8_float32", "bfloat16", "float32")
TARGETS = ("ctranslate2",)
LAYER_NORM_EPS = 1e-5  # torch.nn.LayerNorm's default, which our layers use


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().to(torch.float32).cpu().numpy().copy()


def _linear(spec, *layers: nn.Linear) -> None:
    """One linear spec from one or more of our layers, fused along the output dimension."""
    spec.weight = _np(torch.cat([x.weight for x in layers]))
    if layers[0].bias is not None:
        spec.bias = _np(torch.cat([x.bias for x in layers]))


def _norm(spec, norm: nn.LayerNorm) -> None:
    spec.gamma, spec.beta = _np(norm.weight), _np(norm.bias)


def _attention(spec, mha, *, self_attention: bool) -> None:
    if self_attention:
        _linear(spec.linear[0], mha.q_proj, mha.k_proj, mha.v_proj)
    else:
        _linear(spec.linear[0], mha.q_proj)
        _linear(spec.linear[1], mha.k_proj, mha.v_proj)
    _linear(spec.linear[-1], mha.out_proj)


def _ffn(spec, ff, norm: nn.LayerNorm) -> None:
    _norm(spec.layer_norm, norm)
    _linear(spec.linear_0, ff.net[0])
    _linear(spec.linear_1, ff.net[3])


def _inputs(spec, embed) -> None:
    tables = spec.embeddings if isinstance(spec.embeddings, list) else [spec.embeddings]  # encoder: a list
    tables[0].weight = _np(embed.tokens.weight)
    table = embed.learned.weight if embed.learned is not None else sinusoids(embed.table.size(0), embed.table.size(1))
    spec.position_encodings.encodings = _np(table)


def build_spec(model: TransformerSeq2Seq, codec: TextCodec, *, norm: str, activation: str, heads: int):
    """The CTranslate2 ``TransformerSpec`` of a Transformer, weights filled in."""
    from ctranslate2.specs import common_spec, transformer_spec

    spec = transformer_spec.TransformerSpec.from_config(
        (len(model.encoder), len(model.decoder)), heads, pre_norm=norm == "pre",
        activation=common_spec.Activation.GELU if activation == "gelu" else common_spec.Activation.RELU,
        alignment_layer=model.align_layer, alignment_heads=heads)  # alignment: the heads' average
    enc, dec = spec.encoder, spec.decoder
    _inputs(enc, model.src_embed)
    _inputs(dec, model.tgt_embed)
    for layer_spec, layer in zip(enc.layer, model.encoder):
        _attention(layer_spec.self_attention, layer.self_attn, self_attention=True)
        _norm(layer_spec.self_attention.layer_norm, layer.r_attn.norm)
        _ffn(layer_spec.ffn, layer.ff, layer.r_ff.norm)
    for layer_spec, layer in zip(dec.layer, model.decoder):
        _attention(layer_spec.self_attention, layer.self_attn, self_attention=True)
        _norm(layer_spec.self_attention.layer_norm, layer.r_self.norm)
        _attention(layer_spec.attention, layer.cross_attn, self_attention=False)
        _norm(layer_spec.attention.layer_norm, layer.r_cross.norm)
        _ffn(layer_spec.ffn, layer.ff, layer.r_ff.norm)
    if norm == "pre":
        _norm(enc.layer_norm, model.enc_norm)
        _norm(dec.layer_norm, model.dec_norm)
    _linear(dec.projection, model.output)
    spec.config.layer_norm_epsilon = LAYER_NORM_EPS
    spec.config.bos_token, spec.config.eos_token, spec.config.unk_token = BOS, EOS, UNK
    spec.config.decoder_start_token = BOS
    for side, register in (("src", spec.register_source_vocabulary), ("tgt", spec.register_target_vocabulary)):
        register(codec.tokens(list(range(codec.vocab_size(side))), side=side))
    return spec


def verify_export(directory: Path) -> dict:
    """The marker of an export, once the export is checked whole: it holds regular files only (no
    link, FIFO or directory), exactly the files its marker lists, each with that sha256. Nothing
    CTranslate2 or the tokenizer reads is therefore unchecked."""
    path = directory / EXPORT_MARKER
    try:
        marker = json.loads(read_limited(path, 1 << 20, follow=False).decode("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise CheckpointError(f"{path}: unreadable export marker") from None
    if not isinstance(marker, dict) or marker.get("format") != EXPORT_FORMAT:
        raise CheckpointError(f"{path}: not a seq2attn CTranslate2 export")
    files = marker.get("files")
    if not (isinstance(files, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in files.items())):
        raise CheckpointError(f"{path}: lists no sha256 of the export's files (exported by an older seq2attn?); "
                              "export the model again")
    found = set()
    for entry in os.scandir(directory):
        mode = entry.stat(follow_symlinks=False).st_mode
        if not stat.S_ISREG(mode):
            what = "a symbolic link" if stat.S_ISLNK(mode) else "not a regular file"
            raise CheckpointError(f"{entry.path}: {what}; an export holds its own regular files only")
        if entry.name != EXPORT_MARKER:
            found.add(entry.name)
    if found != set(files):
        odd = min(found ^ set(files))
        why = "not listed in" if odd in found else "missing, but listed in"
        raise CheckpointError(f"{directory / odd}: {why} {EXPORT_MARKER}; the export was modified")
    for name in sorted(files):
        try:
            digest = regular_sha256(directory / name)
        except OSError as e:
            raise CheckpointError(f"{directory / name}: cannot read ({brief(e)})") from None
        if digest != files[name]:
            raise CheckpointError(f"{directory / name}: sha256 does not match {EXPORT_MARKER}; "
                                  "the file was modified or damaged")
    return marker


def export_ctranslate2(model_dir: str | Path, out: str | Path, *, quantization: str | None = None) -> Path:
    """Write ``out``, a CTranslate2 model directory, from the Transformer in ``model_dir``. The
    directory appears whole or not at all (built beside it, then renamed); an existing ``out`` is
    refused."""
    model_dir, out = Path(model_dir), Path(out)
    if quantization is not None and quantization not in QUANTIZATIONS:
        raise ConfigError(f"--quantization {quantization!r}; choose one of: {', '.join(QUANTIZATIONS)}")
    if out.exists():
        raise ConfigError(f"--out {out}: already exists; give a new directory")
    loaded = load(model_dir, device="cpu")
    if not isinstance(loaded.model, TransformerSeq2Seq):
        raise CheckpointError(f"{model_dir}: model.backend={loaded.cfg.model.backend}; CTranslate2 runs "
                              "Transformers only (translate this model with seq2attn itself)")
    try:
        import ctranslate2
        from ctranslate2.converters.converter import Converter
    except ImportError:
        raise ConfigError("--to ctranslate2 needs the ctranslate2 package: pip install 'seq2attn[ctranslate2]'") from None

    cfg = loaded.cfg
    spec = build_spec(loaded.model, loaded.codec, norm=cfg.model.norm, activation=cfg.model.activation,
                      heads=cfg.model.heads)

    class _Spec(Converter):
        def _load(self):
            return spec

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    try:
        _Spec().convert(str(tmp), quantization=quantization, force=True)
        loaded.codec.save(tmp)
        exported = dataclasses.replace(cfg, decode=dataclasses.replace(cfg.decode, alpha=0.0))
        save_config(tmp, exported)
        marker = {"format": EXPORT_FORMAT, "seq2attn": __version__, "ctranslate2": ctranslate2.__version__,
                  "quantization": quantization or "float32", "source": str(model_dir.resolve()),
                  "weights": loaded.info, "files": {p.name: sha256(p) for p in sorted(tmp.iterdir())}}
        (tmp / EXPORT_MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
