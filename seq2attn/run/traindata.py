"""The data of a training run: its corpus store (given with --data, or built into the model
directory), the training pairs that pass the length filter, and the dev set."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from seq2attn.config import Config, TokenizerConfig, to_dict
from seq2attn.errors import ConfigError, DataError
from seq2attn.modeldir import store
from seq2attn.modeldir.store import STORE_DIR
from seq2attn.nn.batches import Batch, EpochPlan, collate, plan_epoch
from seq2attn.run import distributed
from seq2attn.run.distributed import World
from seq2attn.text.corpora import load_corpus
from seq2attn.text.textfiles import Parallel

if TYPE_CHECKING:
    from seq2attn.run.reporter import Reporter



@dataclass
class TrainData:
    """The training pairs as the loop sees them: token ids by pair number (slices of the
    memory-mapped store) and, for the pairs that passed the length filter, their lengths."""

    src: store.Side
    tgt: store.Side
    index: np.ndarray  # (N,) int32 pair numbers kept for training
    lengths: np.ndarray  # (N,) uint16 (int32 for huge max_length) longer side of each kept pair
    tgt_tokens: np.ndarray  # (N,) target tokens each kept pair contributes (EOS included)
    dropped: int = 0  # pairs left out: empty, or longer than data.max_length

    @classmethod
    def from_store(cls, corpus: store.Store, *, max_length: int) -> TrainData:
        src, tgt = corpus.split("train")
        sl, tl = src.lengths(), tgt.lengths()
        small = np.uint16 if max_length < np.iinfo(np.uint16).max else np.int32  # lengths after filtering
        parts = []  # the kept pair numbers, a million at a time: no int64 array of N
        for start in range(0, len(sl), 1 << 20):
            s, t = sl[start: start + (1 << 20)], tl[start: start + (1 << 20)]
            fits = (s > 0) & (s <= max_length) & (t > 0) & (t <= max_length)
            parts.append(np.flatnonzero(fits).astype(np.int32) + np.int32(start))
        index = np.concatenate(parts)
        if not len(index):
            raise DataError(f"no training pair fits data.max_length={max_length} tokens")
        tgt_len = tl[index].astype(small)
        lengths = np.maximum(sl[index].astype(small), tgt_len)
        return cls(src, tgt, index, lengths, tgt_len + 1, len(sl) - len(index))

    def plan(self, *, batch_tokens: int, seed: int, epoch: int) -> EpochPlan:
        return plan_epoch(self.lengths, batch_tokens=batch_tokens, seed=seed, epoch=epoch)

    def batch(self, positions: np.ndarray) -> Batch:
        return collate(self.src, self.tgt, self.index[positions].tolist())


def sources(cfg: Config) -> tuple[store.Source, store.Source] | None:
    """Training and dev data named by the config (a corpus, or files); None when only a store is."""
    d = cfg.data
    if d.corpus is not None:
        if d.train is not None:
            raise ConfigError("give either --corpus or --train/--dev files, not both")
        splits = load_corpus(d.corpus, src_lang=d.src_lang, tgt_lang=d.tgt_lang, data_dir=d.data_dir,
                             seed=cfg.train.seed)
        name = f"corpus {d.corpus} {splits.src_lang}-{splits.tgt_lang}"
        return store.Source.memory(f"{name} train", splits.train), store.Source.memory(f"{name} dev", splits.dev)
    if d.train is None or d.dev is None:
        if d.store is not None:
            return None
        raise ConfigError("no training data: give --corpus NAME, --train SRC TGT --dev SRC TGT, or --data DIR")
    return store.Source.files(*d.train), store.Source.files(*d.dev)


def open_data(cfg: Config, out: Path, world: World, *, reporter: Reporter) -> store.Store:
    """The run's corpus store: ``data.store`` (checked against the data the config names), or
    one rank 0 builds into ``out/data`` on the first run; the other ranks wait for it."""
    path = Path(cfg.data.store) if cfg.data.store is not None else out / STORE_DIR
    digests = distributed.gather(world, hashlib.sha256(repr(to_dict(cfg)).encode()).hexdigest())
    if any(d != digests[0] for d in digests):  # every rank stops here, with the same line
        rank = next(r for r, d in enumerate(digests) if d != digests[0])
        raise ConfigError(f"rank {rank}'s configuration differs from rank 0's (sha256 {digests[rank][:12]} vs "
                          f"{digests[0][:12]}); start every rank with the same command and files")
    if world.main:
        given = sources(cfg)
        if (path / store.MANIFEST).exists() or cfg.data.store is not None:
            corpus = store.open_store(path)
            if cfg.tokenizer != TokenizerConfig():  # a tokenizer asked for must be the store's, not ignored
                corpus.check_tokenizer(cfg.tokenizer)
            if given is not None:
                corpus.check_inputs("train", given[0])
                corpus.check_inputs("dev", given[1])
        else:
            assert given is not None  # sources() raises when neither data nor a store is given
            store.build(path, cfg, train=given[0], dev=given[1])
            reporter.message(f"binarized the training data into {path}")
    distributed.barrier(world)
    return store.open_store(path)


def dev_data(corpus: store.Store, size: int | None) -> tuple[Parallel, tuple[list[list[int]], list[list[int]]]]:
    """Dev text (the BLEU references) and ids, the first ``size`` pairs (None: all)."""
    text = corpus.dev_text()
    src, tgt = corpus.split("dev")
    n = len(text) if size is None else min(size, len(text))
    return text.cut(0, n), ([src[i].tolist() for i in range(n)], [tgt[i].tolist() for i in range(n)])


def model_dev_data(directory: Path, cfg: Config) -> tuple[Parallel, tuple[list[list[int]], list[list[int]]]]:
    """The dev set a trained model directory validated on, from its corpus store."""
    return dev_data(store.open_store(Path(cfg.data.store) if cfg.data.store else directory / STORE_DIR),
                    cfg.data.dev_size)
