"""The training loop as small named steps: data, setup, ``train_step``, ``validate``, checkpoints.

The library never prints: progress and messages go through a :class:`Reporter` that the CLI
implements with rich (tests use the silent default).
"""

from __future__ import annotations

import json
import math
import random
import signal
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .checkpoint import (
    MANIFEST,
    load_config,
    load_trainer_state,
    load_weights,
    save_setup,
    save_trainer_state,
    save_weights,
)
from .config import Config, TrainConfig
from .corpora import load_corpus
from .data import Batch, length_filter, make_batches
from .errors import CheckpointError, ConfigError, DataError
from .loss import token_loss
from .metrics import corpus_scores
from .models import build_model, count_parameters
from .runtime import autocast, check_precision, keep_freed_memory
from .search import greedy
from .textfiles import Parallel, read_parallel
from .tokenizer import TextCodec


class Reporter:
    """Hooks the training loop calls; the default does nothing."""

    def message(self, text: str) -> None: ...

    def start(self, *, total_steps: int | None, start_step: int) -> None: ...

    def step(self, row: dict[str, Any]) -> None: ...

    def validating(self, step: int) -> None: ...

    def validation(self, row: dict[str, Any]) -> None: ...

    def stop(self) -> None: ...


class _Done(Exception):
    """Raised inside the loop when a limit or early stopping ends training."""


class Interrupted(Exception):
    """Ctrl-C during training; the last checkpoint was saved before this was raised."""

    def __init__(self, step: int):
        super().__init__(f"interrupted at step {step}")
        self.step = step


def resolve_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA device is available; use --device cpu or auto")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


def load_data(cfg: Config) -> tuple[Parallel, Parallel]:
    """Training and dev pairs from a corpus name or from files."""
    d = cfg.data
    if d.corpus is not None:
        if d.train is not None:
            raise ConfigError("give either --corpus or --train/--dev files, not both")
        splits = load_corpus(d.corpus, src_lang=d.src_lang, tgt_lang=d.tgt_lang, data_dir=d.data_dir,
                             seed=cfg.train.seed)
        train, dev = splits.train, splits.dev
    else:
        if d.train is None or d.dev is None:
            raise ConfigError("no training data: give --corpus NAME or --train SRC TGT --dev SRC TGT")
        train, dev = read_parallel(*d.train), read_parallel(*d.dev)
    if d.dev_size is not None:
        dev = Parallel(dev.src[: d.dev_size], dev.tgt[: d.dev_size])
    return train, dev


@dataclass
class TrainState:
    """Counters that --resume restores."""

    step: int = 0
    epoch: int = 0
    best_bleu: float = -1.0
    best_loss: float = math.inf
    bad_validations: int = 0
    minutes: float = 0.0  # training wall-clock spent before this run, for max_minutes


@dataclass
class Trainer:
    cfg: Config
    out: Path
    model: nn.Module
    codec: TextCodec
    optimizer: torch.optim.Optimizer
    scheduler: Any
    device: torch.device
    train_ids: tuple[list[list[int]], list[list[int]]]
    train_index: list[int]
    dev: Parallel
    dev_ids: tuple[list[list[int]], list[list[int]]]
    state: TrainState = field(default_factory=TrainState)
    rng: random.Random = field(default_factory=random.Random)
    reporter: Reporter = field(default_factory=Reporter)

    def __post_init__(self) -> None:
        # fp16 needs loss scaling against gradient underflow; for fp32 / bf16 the scaler is a no-op
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.cfg.train.precision == "fp16")

    # --- steps -------------------------------------------------------------------------------
    def autocast(self):
        return autocast(self.device, self.cfg.train.precision)

    def loss(self, batch: Batch) -> torch.Tensor:
        """Summed token cross-entropy of a teacher-forced pass (padding ignored)."""
        with self.autocast():
            out = self.model.features(batch.src, batch.src_lengths, batch.tgt_in)
        # the vocabulary projection runs inside the loss, chunked, in float32 (seq2attn/loss.py)
        return token_loss(out.hidden, self.model.output_layer, batch.tgt_out,
                          label_smoothing=self.cfg.train.label_smoothing, precision=self.cfg.train.precision)

    def train_step(self, batch: Batch) -> float:
        self.model.train()
        n = batch.n_tgt_tokens
        loss = self.loss(batch)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss / n).backward()
        if self.cfg.train.clip_norm is not None:
            self.scaler.unscale_(self.optimizer)  # clip the true gradients, not the scaled ones
            nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.train.clip_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.cfg.train.schedule == "noam":
            self.scheduler.step()
        return float(loss.detach()) / n

    @torch.no_grad()
    def validate(self) -> dict[str, Any]:
        """Dev loss / perplexity (teacher-forced) and greedy dev BLEU, chrF and exact match."""
        self.model.eval()
        tc, dc = self.cfg.train, self.cfg.decode
        total, tokens = 0.0, 0
        for batch in make_batches(*self.dev_ids, batch_tokens=tc.batch_tokens):
            batch = batch.to(self.device)
            total += float(self.loss(batch))
            tokens += batch.n_tgt_tokens
        hyps = translate_ids(self.model, self.dev_ids[0], batch_tokens=dc.batch_tokens, device=self.device,
                             max_len_a=dc.max_len_a, max_len_b=dc.max_len_b)
        text = self.codec.decode(hyps, side="tgt")
        scores = {s.name: s.score for s in corpus_scores(text, [self.dev.tgt], metrics=("bleu", "chrf", "exact"))}
        loss = total / max(tokens, 1)
        return {"loss": loss, "ppl": math.exp(min(loss, 50.0)), "bleu": scores["BLEU"],
                "chrf": scores.get("chrF2", 0.0), "exact": scores["exact"], "example": text[0] if text else ""}

    # --- bookkeeping -------------------------------------------------------------------------
    def log(self, row: dict[str, Any]) -> None:
        with open(self.out / "metrics.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")

    def save(self, *, best: bool) -> None:
        info = {"step": self.state.step, "epoch": self.state.epoch, "dev_bleu": self.state.best_bleu}
        if best:
            save_weights(self.out, self.model, which="best", info=info)
        save_weights(self.out, self.model, which="last", info=info)
        save_trainer_state(self.out, {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler else {},
            "counters": vars(self.state),
            "torch_rng": torch.get_rng_state(),
            "rng": list(self.rng.getstate()[1]),
        })

    def restore(self) -> None:
        saved = load_trainer_state(self.out)
        try:
            self.optimizer.load_state_dict(saved["optimizer"])
            if self.scheduler:
                self.scheduler.load_state_dict(saved["scheduler"])
            self.state = TrainState(**saved["counters"])
            torch.set_rng_state(saved["torch_rng"])
            self.rng.setstate((3, tuple(saved["rng"]), None))
        except (KeyError, TypeError, ValueError, RuntimeError) as e:
            raise CheckpointError(f"{self.out / 'trainer.pt'}: does not fit this model ({type(e).__name__})") from None

    def after_validation(self, result: dict[str, Any]) -> bool:
        """Keep the best checkpoint, adapt the learning rate; True when patience ran out."""
        improved = (result["bleu"], -result["loss"]) > (self.state.best_bleu, -self.state.best_loss)
        if improved:
            self.state.best_bleu, self.state.best_loss = result["bleu"], result["loss"]
            self.state.bad_validations = 0
        else:
            self.state.bad_validations += 1
        if self.scheduler and self.cfg.train.schedule == "plateau":
            self.scheduler.step(result["bleu"])
        self.save(best=improved)
        patience = self.cfg.train.patience
        return patience is not None and self.state.bad_validations >= patience


def translate_ids(
    model: nn.Module, src_ids: Sequence[list[int]], *, batch_tokens: int, device: torch.device,
    max_len_a: float, max_len_b: int,
) -> list[list[int]]:
    """Greedy output ids for every source, in input order."""
    out: list[list[int]] = [[] for _ in src_ids]
    for batch in make_batches(src_ids, None, batch_tokens=batch_tokens):
        for i, hyp in zip(batch.indices, greedy(model, batch.to(device), max_len_a=max_len_a, max_len_b=max_len_b)):
            out[i] = hyp.ids
    return out


def build_trainer(cfg: Config, out: Path, *, resume: bool, reporter: Reporter) -> Trainer:
    """Everything the loop needs: data, tokenizer, model, optimizer (restored with ``resume``)."""
    if resume:
        if not (out / MANIFEST).is_file():
            raise CheckpointError(f"--resume: {out} holds no model to resume")
        saved = load_config(out)
        cfg = replace(saved, train=replace(saved.train, **_resumable(cfg.train)))
    elif (out / MANIFEST).exists():
        raise ConfigError(f"--out {out}: already holds a model; pass --resume or choose another directory")
    seed_everything(cfg.train.seed)
    keep_freed_memory()  # see seq2attn/runtime.py
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    device = resolve_device(cfg.train.device)
    check_precision(cfg.train.precision, device, option="train.precision")
    train, dev = load_data(cfg)
    if resume:
        codec = TextCodec.load(out)
    else:
        codec = TextCodec.train(cfg.tokenizer, train.src, train.tgt)
        save_setup(out, cfg, codec)
    src_ids, tgt_ids = codec.encode(train.src, side="src"), codec.encode(train.tgt, side="tgt")
    keep, dropped = length_filter(src_ids, tgt_ids, max_length=cfg.data.max_length)
    if not keep:
        raise DataError(f"no training pair fits data.max_length={cfg.data.max_length} tokens")
    if dropped:
        reporter.message(f"dropped {dropped} of {len(src_ids)} training pairs that are empty or longer "
                         f"than data.max_length={cfg.data.max_length} tokens")
    model = build_model(cfg.model, src_vocab=codec.vocab_size("src"), tgt_vocab=codec.vocab_size("tgt"),
                        joint=codec.joint).to(device)
    reporter.message(f"model: {count_parameters(model):,} parameters; vocab src {codec.vocab_size('src')} / "
                     f"tgt {codec.vocab_size('tgt')}; {len(keep):,} training pairs; device {device}")
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.train.lr, betas=cfg.train.adam_betas,
                                 weight_decay=cfg.train.weight_decay)
    scheduler = build_scheduler(optimizer, cfg.train)
    trainer = Trainer(cfg, out, model, codec, optimizer, scheduler, device, (src_ids, tgt_ids), keep, dev,
                      (codec.encode(dev.src, side="src"), codec.encode(dev.tgt, side="tgt")),
                      rng=random.Random(cfg.train.seed), reporter=reporter)
    if resume:
        load_weights(out, model, which="last", device=device)
        trainer.restore()
        reporter.message(f"resuming from step {trainer.state.step}")
    return trainer


def build_scheduler(optimizer: torch.optim.Optimizer, tc: TrainConfig) -> Any:
    """``plateau``: decay on a dev-BLEU plateau (stepped per validation; none when lr_decay is null);
    ``noam``: lr * min(step / warmup, sqrt(warmup / step)), peak train.lr at step warmup_steps
    (stepped per batch); ``constant``: none."""
    if tc.schedule == "noam":
        warmup = tc.warmup_steps
        # LambdaLR counts from 0 before the first update: step + 1 keeps the first lr above zero
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: min((step + 1) / warmup, math.sqrt(warmup / (step + 1))))
    if tc.schedule == "plateau" and tc.lr_decay is not None:
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="max", factor=tc.lr_decay, patience=tc.lr_patience, min_lr=tc.min_lr)
    return None


def _resumable(t: TrainConfig) -> dict[str, Any]:
    """Options a resumed run may change: limits and the device, not the model or optimizer."""
    return {k: getattr(t, k) for k in ("max_steps", "max_epochs", "max_minutes", "device", "threads")}


class _CtrlC:
    """The first Ctrl-C only sets a flag that the loop checks between steps, so it never lands in
    the middle of a step, a checkpoint write or a progress-bar update (an exception raised there
    can leave a lock held and hang the exit). A second Ctrl-C interrupts at once."""

    def __init__(self):
        self.pressed = False
        self.previous = None
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum, frame) -> None:
        self.pressed = True
        self.restore()

    def restore(self) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
            self.previous = None


def run(trainer: Trainer) -> TrainState:
    """Train until a limit or early stopping; validate every ``validate_every`` steps."""
    tc, st = trainer.cfg.train, trainer.state
    start, minutes_before = time.monotonic(), st.minutes
    elapsed = lambda: minutes_before + (time.monotonic() - start) / 60
    trainer.reporter.start(total_steps=tc.max_steps, start_step=st.step)
    tokens, window_start, last_valid = 0, time.monotonic(), st.step
    ctrl_c = _CtrlC()
    try:
        while True:
            for batch in make_batches(*trainer.train_ids, batch_tokens=tc.batch_tokens,
                                      indices=trainer.train_index, rng=trainer.rng):
                if ctrl_c.pressed:
                    raise KeyboardInterrupt
                if _limit_reached(tc, st, elapsed()):
                    raise _Done
                batch = batch.to(trainer.device)
                loss = trainer.train_step(batch)
                st.step += 1
                tokens += batch.n_tgt_tokens
                if st.step % tc.log_every == 0:
                    now = time.monotonic()
                    row = {"kind": "train", "step": st.step, "epoch": st.epoch, "loss": round(loss, 4),
                           "lr": trainer.optimizer.param_groups[0]["lr"],
                           "tokens_per_s": round(tokens / max(now - window_start, 1e-9), 1),
                           "minutes": round(elapsed(), 3)}
                    trainer.log(row)
                    trainer.reporter.step(row)
                    tokens, window_start = 0, now
                if st.step % tc.validate_every == 0:
                    st.minutes = elapsed()
                    last_valid = st.step
                    if _validate(trainer):
                        raise _Done
            st.epoch += 1
    except _Done:
        pass
    except KeyboardInterrupt:
        ctrl_c.restore()
        st.minutes = elapsed()
        trainer.save(best=False)
        trainer.reporter.stop()
        raise Interrupted(st.step) from None
    finally:
        ctrl_c.restore()
    st.minutes = elapsed()
    if last_valid != st.step:
        _validate(trainer)
    trainer.reporter.stop()
    return st


def _validate(trainer: Trainer) -> bool:
    trainer.reporter.validating(trainer.state.step)
    result = trainer.validate()
    st = trainer.state
    row = {"kind": "valid", "step": st.step, "epoch": st.epoch, **{k: round(v, 4) if isinstance(v, float) else v
                                                                   for k, v in result.items()}}
    stop = trainer.after_validation(result)
    row["best"] = st.bad_validations == 0
    trainer.log(row)
    trainer.reporter.validation(row)
    if trainer.cfg.train.attention_image:
        _attention_image(trainer)
    if stop:
        trainer.reporter.message(f"early stopping: no dev BLEU gain in {st.bad_validations} validations")
    return stop


def _attention_image(trainer: Trainer) -> None:
    """Watch alignment emerge: the first dev pair's attention (forced decoding) at this step."""
    from .alignment import draw_pair

    if not trainer.dev.src:
        return
    try:
        draw_pair(trainer.model, trainer.codec, src=trainer.dev.src[0], tgt=trainer.dev.tgt[0],
                  max_length=trainer.cfg.data.max_length, device=trainer.device,
                  path=trainer.out / "attention" / f"step-{trainer.state.step}.png",
                  title=f"step {trainer.state.step}: {trainer.dev.src[0]}  ->  {trainer.dev.tgt[0]}")
    except Exception as e:  # noqa: BLE001 - a picture is never worth a failed training run
        trainer.reporter.message(f"could not save the attention image ({type(e).__name__}: {e})")


def _limit_reached(tc: TrainConfig, st: TrainState, minutes: float) -> bool:
    return ((tc.max_steps is not None and st.step >= tc.max_steps)
            or (tc.max_epochs is not None and st.epoch >= tc.max_epochs)
            or (tc.max_minutes is not None and minutes >= tc.max_minutes))


def train(cfg: Config, out: str | Path, *, resume: bool = False, reporter: Reporter | None = None) -> TrainState:
    """Train a model into directory ``out`` (see :mod:`seq2attn.checkpoint` for its files)."""
    trainer = build_trainer(cfg, Path(out), resume=resume, reporter=reporter or Reporter())
    return run(trainer)
