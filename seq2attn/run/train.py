"""The training loop as small named steps: data, setup, ``train_step``, ``validate``, checkpoints.

The library never prints: progress and messages go through a :class:`Reporter` that the CLI
implements with rich (tests use the silent default).
"""

from __future__ import annotations

import math
import random
import signal
import threading
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from seq2attn.config import Config, TokenizerConfig, TrainConfig
from seq2attn.errors import CheckpointError, DataError, Seq2AttnError, brief
from seq2attn.modeldir.checkpoint import (
    load_config,
    load_trainer_state,
    load_weights,
    read_manifest,
    save_checkpoint,
    save_setup,
    snapshots,
)
from seq2attn.modeldir.store import codec_sha256
from seq2attn.nn.batches import Batch, EpochPlan
from seq2attn.nn.loss import LossModel
from seq2attn.nn.models import build_model, check_config, count_parameters
from seq2attn.nn.runtime import (
    check_precision,
    keep_freed_memory,
    resolve_device,
    resolve_precision,
)
from seq2attn.run import distributed
from seq2attn.run.averaging import average_last
from seq2attn.run.board import Board, check_tensorboard
from seq2attn.run.curve import draw_curve
from seq2attn.run.distributed import World
from seq2attn.run.metricslog import METRICS, append_metrics, drop_rows_after
from seq2attn.run.optim import PER_BATCH_SCHEDULES, build_optimizer, build_scheduler
from seq2attn.run.reporter import Reporter
from seq2attn.run.rundir import RunLock, check_out_dir, claim, remove_run
from seq2attn.run.traindata import TrainData, dev_data, open_data
from seq2attn.run.validation import DevSet, dev_info, score_dev
from seq2attn.text.textfiles import Parallel
from seq2attn.text.tokenizer import TextCodec


class _Done(Exception):
    """Raised inside the loop when a limit or early stopping ends training."""


class Interrupted(Exception):
    """Ctrl-C, SIGTERM or SIGHUP during training; the last checkpoint was saved before this was
    raised. ``signal`` is the signal's number (the CLI exits 128 + it)."""

    def __init__(self, step: int, signum: int = signal.SIGINT):
        super().__init__(f"interrupted at step {step}")
        self.step = step
        self.signal = signum


class Diverged(Seq2AttnError):
    """The training loss became NaN or infinite."""


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


@dataclass
class TrainState:
    """Counters that --resume restores."""

    step: int = 0  # optimizer steps
    epoch: int = 0
    batch: int = 0  # batches of this epoch's plan already trained on (all ranks together)
    best_bleu: float = -1.0
    best_loss: float = math.inf
    bad_validations: int = 0
    minutes: float = 0.0  # training wall-clock spent before this run, for max_minutes
    train_seconds: float = 0.0  # time in training steps only (no validation, no saving): the budget schedule's clock


@dataclass
class Trainer:
    cfg: Config
    out: Path
    model: nn.Module
    codec: TextCodec
    optimizer: torch.optim.Optimizer
    scheduler: Any
    device: torch.device
    data: TrainData
    dev: Parallel
    dev_ids: tuple[list[list[int]], list[list[int]]]
    state: TrainState = field(default_factory=TrainState)
    reporter: Reporter = field(default_factory=Reporter)
    world: World = field(default_factory=World)
    lock: RunLock | None = None  # rank 0 holds the model directory for the whole run
    clock: Callable[[], float] = field(default=lambda: time.monotonic())  # seconds; tests inject their own
    board: Any = None  # train.tensorboard: a seq2attn.run.board.Board (rank 0 only)

    def __post_init__(self) -> None:
        tc = self.cfg.train
        # fp16 needs loss scaling against gradient underflow; for fp32 / bf16 the scaler is a no-op
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=tc.precision == "fp16")
        self.loss_model = LossModel(self.model, label_smoothing=tc.label_smoothing, precision=tc.precision,
                                    device=self.device)
        self.step_model: nn.Module = self.loss_model
        if self.world.distributed:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.step_model = DistributedDataParallel(self.loss_model, device_ids=ids)
        self._plan: tuple[int, EpochPlan] | None = None

    # --- steps -------------------------------------------------------------------------------
    def loss(self, batch: Batch, module: nn.Module | None = None) -> torch.Tensor:
        """Summed token cross-entropy of a teacher-forced pass (padding ignored)."""
        return (module or self.loss_model)(batch.src, batch.src_lengths, batch.tgt_in, batch.tgt_out)

    def train_step(self, batches: list[Batch], total_tokens: int) -> torch.Tensor:
        """One optimizer step over this rank's ``batches``; gradients are summed over them (and
        over the ranks by DDP) and normalised by ``total_tokens``, the target tokens of the whole
        step on all ranks. Returns this rank's summed loss (a tensor: no host sync here)."""
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        scale = self.world.size / total_tokens  # DDP averages gradients over the ranks
        summed = torch.zeros((), device=self.device)
        for i, batch in enumerate(batches):
            last = i == len(batches) - 1  # DDP all-reduces once, after the last backward
            quiet = self.step_model.no_sync() if self.world.distributed and not last else nullcontext()
            with quiet:
                loss = self.loss(batch, self.step_model)
                self.scaler.scale(loss * scale).backward()
            summed += loss.detach().float()
        if self.cfg.train.clip_norm is not None:
            self.scaler.unscale_(self.optimizer)  # clip the true gradients, not the scaled ones
            nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.train.clip_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.cfg.train.schedule in PER_BATCH_SCHEDULES:
            self.scheduler.step()
        return summed

    def plan(self, epoch: int) -> EpochPlan:
        if self._plan is None or self._plan[0] != epoch:
            tc = self.cfg.train
            self._plan = (epoch, self.data.plan(batch_tokens=tc.batch_tokens, seed=tc.seed, epoch=epoch))
        return self._plan[1]

    def next_step(self) -> tuple[list[Batch], int, int] | None:
        """This rank's batches of the next optimizer step, the target tokens of the whole step
        (all ranks) and the plan position after it; None at the end of the epoch.

        A step takes the next ``accum_steps * world`` batches of the epoch's plan, dealt
        round-robin over the ranks; an epoch's last, shorter group is used when it gives every
        rank a batch, else skipped."""
        plan, start = self.plan(self.state.epoch), self.state.batch
        end = min(start + self.cfg.train.accum_steps * self.world.size, len(plan))
        if end - start < self.world.size:
            if start == 0:
                raise DataError(f"an epoch holds {len(plan)} batches, fewer than the {self.world.size} "
                                "processes; lower train.batch_tokens or use fewer processes")
            return None
        group = [plan.batch(k) for k in range(start, end)]
        total = int(sum(int(self.data.tgt_tokens[p].sum()) for p in group))
        mine = [self.data.batch(p) for p in group[self.world.rank::self.world.size]]
        return mine, total, end

    def validate(self, model: nn.Module | None = None) -> dict[str, Any]:
        """Dev loss, perplexity, BLEU, chrF, exact match and seconds (see seq2attn/validation.py)."""
        return score_dev(model or self.model, DevSet(self.dev, *self.dev_ids), cfg=self.cfg, codec=self.codec,
                         device=self.device)

    # --- bookkeeping -------------------------------------------------------------------------
    def release(self) -> None:
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    def log(self, row: dict[str, Any]) -> None:
        if not self.world.main:
            return
        append_metrics(self.out, row)
        if self.board is not None:
            self.board.log(row)

    def save(self, *, best: bool, result: dict[str, Any] | None = None, snapshot: bool = False) -> None:
        """Rank 0 writes the checkpoint; every rank waits until it is complete."""
        if self.world.main:
            self._save(best=best, result=result, snapshot=snapshot)
        distributed.barrier(self.world)

    def _save(self, *, best: bool, result: dict[str, Any] | None, snapshot: bool = False) -> None:
        """The last weights (and the best, and a snapshot to average) with their dev scores, as one
        unit; ``result`` is None when saving between validations (Ctrl-C, or a ``snapshot`` to
        average in the final part of a budgeted run)."""
        info = {"step": self.state.step, "epoch": self.state.epoch, "minutes": round(self.state.minutes, 3),
                **(dev_info(result) if result else {})}
        keep = self.cfg.train.average_last if snapshot else None
        save_checkpoint(self.out, self.model, which=("best", "last") if best else ("last",), info=info,
                        keep_snapshots=keep, trainer_state={
                            "optimizer": self.optimizer.state_dict(),
                            "scheduler": self.scheduler.state_dict() if self.scheduler else {},
                            "counters": vars(self.state),
                            "torch_rng": torch.get_rng_state(),
                            **({"cuda_rng": torch.cuda.get_rng_state(self.device)}
                               if self.device.type == "cuda" else {}),
                        })

    def restore(self) -> None:
        saved = load_trainer_state(self.out)
        try:
            if isinstance(saved.get("counters"), dict) and "train_seconds" not in saved["counters"]:
                # a checkpoint from before the budget schedule: its training time is its wall-clock time
                saved["counters"] = {**saved["counters"], "train_seconds": 60.0 * saved["counters"]["minutes"]}
            _check_counters(saved["counters"])
            _check_optimizer_state(self.optimizer, saved["optimizer"])
            self.optimizer.load_state_dict(saved["optimizer"])
            if self.scheduler:
                self.scheduler.load_state_dict(saved["scheduler"])
            self.state = TrainState(**saved["counters"])
            torch.set_rng_state(saved["torch_rng"])
            if self.device.type == "cuda" and "cuda_rng" in saved:
                torch.cuda.set_rng_state(saved["cuda_rng"], self.device)
        except (KeyError, TypeError, ValueError, RuntimeError, AttributeError, IndexError) as e:
            raise CheckpointError(f"{self.out / 'trainer.pt'}: does not fit this model ({brief(e, 100)})") from None
        if self.world.main:
            drop_rows_after(self.out / METRICS, self.state.step)

    def after_validation(self, result: dict[str, Any], *, snapshot: bool = True) -> bool:
        """Keep the best checkpoint (and with ``snapshot`` one to average), adapt the learning rate;
        True when patience ran out."""
        improved = (result["bleu"], -result["loss"]) > (self.state.best_bleu, -self.state.best_loss)
        if improved:
            self.state.best_bleu, self.state.best_loss = result["bleu"], result["loss"]
            self.state.bad_validations = 0
        else:
            self.state.bad_validations += 1
        if self.scheduler and self.cfg.train.schedule == "plateau":
            self.scheduler.step(result["bleu"])
        self.save(best=improved, result=result, snapshot=snapshot)
        patience = self.cfg.train.patience
        return patience is not None and self.state.bad_validations >= patience


def _check_counters(counters: Any) -> None:
    """Every TrainState field present, with its type: a step of "60" or 1.5 is not a position."""
    hints = {f.name: f.type for f in fields(TrainState)}
    if not isinstance(counters, dict) or set(counters) != set(hints):
        raise KeyError("counters")
    for name, value in counters.items():
        kind = int if hints[name] in ("int", int) else float
        if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else int):
            raise TypeError(f"counters.{name} = {value!r} is not {'an integer' if kind is int else 'a number'}")


def _check_optimizer_state(optimizer: torch.optim.Optimizer, saved: Any) -> None:
    """The saved optimizer moments must have the shapes of this model's parameters: torch would
    only notice at the first step, inside the update."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    state, groups = saved["state"], saved["param_groups"]
    if sum(len(g["params"]) for g in groups) != len(params):
        raise ValueError(f"{len(params)} parameters here, a different number in the saved optimizer")
    for i, p in enumerate(params):
        for key, value in state.get(i, {}).items():
            if torch.is_tensor(value) and value.dim() > 0 and value.shape != p.shape:
                raise ValueError(f"optimizer {key} of parameter {i} has shape {tuple(value.shape)}, "
                                 f"the model {tuple(p.shape)}")


def build_trainer(cfg: Config, out: Path, *, resume: bool, reporter: Reporter) -> Trainer:
    """Everything the loop needs: data, tokenizer, model, optimizer (restored with ``resume``).

    The directory is checked before anything is read or written, then claimed (locked, marked as
    ours) by rank 0 for the whole run. A fresh run that fails before its first checkpoint removes
    the directory again when it created it (else the next run may start over in it)."""
    check_config(cfg)  # the backend's own checks, before anything is read
    if cfg.train.tensorboard:
        check_tensorboard()
    world = distributed.world_from_env()
    created = world.main and not resume and not out.exists()
    if world.main:
        check_out_dir(out, resume=resume)
    if resume:
        saved = load_config(out)
        cfg = replace(saved, train=replace(saved.train, **_resumable(cfg.train)))
    if not world.main:
        reporter = Reporter()  # one voice: rank 0's
    lock = claim(out, resume=resume) if world.main else None
    try:
        return _build(cfg, out, resume=resume, reporter=reporter, world=world, lock=lock)
    except BaseException:
        if lock is not None:
            lock.release()
        if created:
            remove_run(out)
        raise


def _build(cfg: Config, out: Path, *, resume: bool, reporter: Reporter, world: World,
           lock: RunLock | None) -> Trainer:
    """The body of :func:`build_trainer`, run while rank 0 holds the directory."""
    seed_everything(cfg.train.seed)
    keep_freed_memory()  # see seq2attn/runtime.py
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    device = resolve_device(cfg.train.device, local_rank=world.local_rank if world.distributed else None)
    precision, why = resolve_precision(cfg.train.precision, device)
    check_precision(precision, device, option="train.precision")
    if why:  # config.yaml records what ran, so a resume runs the same precision
        reporter.message(f"train.precision=auto: {precision} ({why})")
        cfg = replace(cfg, train=replace(cfg.train, precision=precision))
    distributed.init(world, device)
    store = open_data(cfg, out, world, reporter=reporter)
    codec = store.codec
    if resume:
        if codec_sha256(TextCodec.load(out)) != store.tokenizer_sha256:
            raise DataError(f"{store.path}: its tokenizer differs from the model's in {out}; "
                            "resume with the store the run was started with")
    else:
        # the store's tokenizer is the model's: its config is what the model directory records
        cfg = replace(cfg, tokenizer=TokenizerConfig(**store.manifest["tokenizer"]["config"]))
    data = TrainData.from_store(store, max_length=cfg.data.max_length)
    if not resume:
        if world.main:
            save_setup(out, cfg, codec)
        distributed.barrier(world)
    if data.dropped:
        reporter.message(f"dropped {data.dropped:,} of {data.dropped + len(data.index):,} training pairs that are "
                         f"empty or longer than data.max_length={cfg.data.max_length} tokens")
    dev, dev_ids = dev_data(store, cfg.data.dev_size)
    model = build_model(cfg.model, src_vocab=codec.vocab_size("src"), tgt_vocab=codec.vocab_size("tgt"),
                        joint=codec.joint).to(device)
    reporter.message(f"model: {count_parameters(model):,} parameters; vocab src {codec.vocab_size('src')} / "
                     f"tgt {codec.vocab_size('tgt')}; {len(data.index):,} training pairs; device {device}")
    optimizer = build_optimizer(model, cfg.train)
    scheduler = build_scheduler(optimizer, cfg.train)
    trainer = Trainer(cfg, out, model, codec, optimizer, scheduler, device, data, dev, dev_ids,
                      reporter=reporter, world=world, lock=lock)
    if resume:
        load_weights(out, model, which="last", device=device)
        trainer.restore()
        reporter.message(f"resuming from step {trainer.state.step}")
    if cfg.train.tensorboard and world.main:
        trainer.board = Board(out, start_step=trainer.state.step)
    return trainer


def _resumable(t: TrainConfig) -> dict[str, Any]:
    """Options a resumed run may change: limits and the device, not the model, the optimizer or
    the batches (changing those would make the continuation differ from an uninterrupted run)."""
    return {k: getattr(t, k) for k in ("max_steps", "max_epochs", "max_minutes", "device", "threads", "tensorboard")}


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class _CtrlC:
    """Ctrl-C, SIGTERM (a scheduler's kill, ``docker stop``) and SIGHUP (a closed terminal) only
    set a flag that the loop checks between steps, so none lands in the middle of a step, a
    checkpoint write or a progress-bar update (an exception raised there can leave a lock held
    and hang the exit). A second signal interrupts at once."""

    def __init__(self):
        self.pressed = False
        self.signum: int = signal.SIGINT
        self.previous: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            self.previous = {s: signal.signal(s, self._handle) for s in STOP_SIGNALS}

    def _handle(self, signum, frame) -> None:
        self.pressed, self.signum = True, signum
        self.restore()

    def restore(self) -> None:
        for s, handler in self.previous.items():
            signal.signal(s, handler)
        self.previous = {}


def run(trainer: Trainer) -> TrainState:
    """Train until a limit or early stopping; validate every ``validate_every`` steps."""
    try:
        state = _loop(trainer)
        # every rank leaves together, so none tears its process group down while another still
        # works (the CLI then ends each worker without interpreter finalization: see
        # distributed.exit_worker). Not on the error path, where the other ranks may never reach
        # a barrier.
        distributed.barrier(trainer.world)
        return state
    finally:
        if trainer.board is not None:
            trainer.board.close()
        distributed.close()


def _loop(trainer: Trainer) -> TrainState:
    tc, st, world, clock = trainer.cfg.train, trainer.state, trainer.world, trainer.clock
    start, minutes_before = clock(), st.minutes
    elapsed = lambda: minutes_before + (clock() - start) / 60
    budget = trainer.scheduler if tc.schedule == "budget" else None
    # a budgeted run's max_minutes counts training time (validations excluded), where its schedule ends
    spent = (lambda: st.train_seconds / 60) if budget else elapsed
    trainer.reporter.start(total_steps=tc.max_steps, start_step=st.step)
    tokens, window_start, last_valid = 0, clock(), st.step
    ctrl_c = _CtrlC()
    try:
        while True:
            tick = clock()
            # Ctrl-C and the clock are seen by each rank at its own moment: decide together, at
            # the first step and then at log steps, so every rank stops after the same step
            if (_sync_point(tc, st, world)
                    and distributed.any_rank(world, ctrl_c.pressed, trainer.device)):
                raise KeyboardInterrupt
            if _limit_reached(tc, st, spent(), world, trainer.device):
                raise _Done
            step = trainer.next_step()
            if step is None:
                st.epoch, st.batch = st.epoch + 1, 0
                continue
            batches, total_tokens, st.batch = step
            before = budget.progress(st.step, st.train_seconds) if budget else 0.0
            if budget:
                budget.update(st.step, before)
            loss = trainer.train_step([b.to(trainer.device) for b in batches], total_tokens)
            st.step += 1
            st.train_seconds += clock() - tick
            if budget and world.distributed:  # one clock for the schedule: rank 0's (the lr must agree)
                st.train_seconds = distributed.share(world, st.train_seconds)
            tokens += total_tokens
            if budget and _snapshot_due(tc, before, budget.progress(st.step, st.train_seconds)):
                st.minutes = elapsed()
                trainer.save(best=False, snapshot=True)
                trainer.log({"kind": "snapshot", "step": st.step, "epoch": st.epoch, "minutes": round(st.minutes, 3),
                             "train_minutes": round(st.train_seconds / 60, 3)})
            if st.step % tc.log_every == 0:
                now = clock()
                mine = sum(b.n_tgt_tokens for b in batches)
                if tc.precision != "fp16":  # fp16's loss scaler skips the steps with an inf on purpose
                    _check_finite(trainer, float(loss), "train")
                row = {"kind": "train", "step": st.step, "epoch": st.epoch, "loss": round(float(loss) / mine, 4),
                       "lr": trainer.optimizer.param_groups[0]["lr"],
                       "tokens_per_s": round(tokens / max(now - window_start, 1e-9), 1), "target_tokens": tokens,
                       "minutes": round(elapsed(), 3), "train_minutes": round(st.train_seconds / 60, 3),
                       **_budget_row(budget, st), **_gpu_memory(trainer.device)}
                trainer.log(row)
                trainer.reporter.step(row)
                tokens, window_start = 0, now
            if st.step % tc.validate_every == 0:
                st.minutes = elapsed()
                last_valid = st.step
                if _validate(trainer):
                    raise _Done
    except _Done:
        pass
    except KeyboardInterrupt:
        ctrl_c.restore()
        st.minutes = elapsed()
        trainer.save(best=False)
        trainer.reporter.stop()
        raise Interrupted(st.step, ctrl_c.signum) from None
    finally:
        ctrl_c.restore()
    st.minutes = elapsed()
    if last_valid != st.step:
        _validate(trainer, final=True)
    if world.main:  # no collective operation inside: the other ranks may finish
        _after_training(trainer)
    trainer.reporter.stop()
    return st


# --- what runs beside the loop: after each validation, after training (rank 0 only) -----------------
def _after_validation(trainer: Trainer) -> None:
    """The pictures of this validation: the attention image (and its TensorBoard copy), the curve."""
    if trainer.cfg.train.attention_image:
        _attention_image(trainer)
    if trainer.cfg.train.curve:
        _picture("the learning curve", trainer, lambda: draw_curve(trainer.out))


def _after_training(trainer: Trainer) -> None:
    """Once the weights are final: average the kept checkpoints, then choose the length penalty on dev
    (over the weights a model directory loads by default, averaged ones included)."""
    if trainer.cfg.train.average_last:
        _average(trainer)
    if trainer.cfg.train.tune_alpha:
        _tune_alpha(trainer)


def _snapshot_due(tc: TrainConfig, before: float, after: float) -> bool:
    """Budget schedule with ``average_last`` N: a snapshot when an update crosses one of the N-1 marks
    that split the final ``average_span`` of the budget evenly (the final checkpoint is the Nth), so the
    checkpoints averaged are spaced for the budget, whatever the step time."""
    if not tc.average_last or tc.average_last < 2 or after >= 1.0:
        return False
    n, start = tc.average_last, 1.0 - tc.average_span
    mark = lambda p: math.floor((p - start) * n / tc.average_span + 1e-9)
    return mark(after) >= 1 and mark(after) > mark(before)


def _budget_row(budget: Any, st: TrainState) -> dict[str, Any]:
    """A budgeted run's progress and the steps its measured step time predicts for the whole budget."""
    if budget is None:
        return {}
    done = budget.progress(st.step, st.train_seconds)
    return {"budget_progress": round(done, 4), **({"expected_steps": round(st.step / done)} if done > 0 else {})}


def _check_finite(trainer: Trainer, loss: float, which: str) -> None:
    """A NaN or infinite loss ends the run before it can be saved (and never becomes "best")."""
    if not math.isfinite(loss):
        kept = read_manifest(trainer.out)["weights"].get("last") if trainer.world.main else None
        where = f"the last checkpoint (step {kept['step']}) is kept" if kept else "no checkpoint was saved"
        raise Diverged(f"{which} loss is {loss} at step {trainer.state.step}: training diverged; {where}; "
                       "lower train.lr or set train.clip_norm")


def _sync_point(tc: TrainConfig, st: TrainState, world: World) -> bool:
    """Where ranks may agree to stop: every step alone, log steps in a distributed run."""
    return not world.distributed or st.step % tc.log_every == 0


def _gpu_memory(device: torch.device) -> dict[str, float]:
    if device.type != "cuda":
        return {}
    return {"gpu_peak_mib": round(torch.cuda.max_memory_allocated(device) / 2**20, 1)}


def _validate(trainer: Trainer, *, final: bool = False) -> bool:
    """Rank 0 validates; every rank applies its result, so that the learning-rate schedule and
    early stopping agree on all of them. Every validation keeps a checkpoint to average, except in
    a budgeted run, which keeps its final one and the snapshots spaced over its last part."""
    trainer.reporter.validating(trainer.state.step)
    result = distributed.share(trainer.world, trainer.validate() if trainer.world.main else None)
    _check_finite(trainer, result["loss"], "dev")
    st = trainer.state
    row = {"kind": "valid", "step": st.step, "epoch": st.epoch, "minutes": round(st.minutes, 3),
           **{k: round(v, 4) if isinstance(v, float) else v for k, v in result.items()}}
    row["valid_seconds"] = row.pop("seconds")
    budget, tc = trainer.scheduler, trainer.cfg.train
    snapshot = (tc.schedule != "budget" or final or budget.progress(st.step, st.train_seconds) >= 1.0)
    stop = trainer.after_validation(result, snapshot=snapshot)
    row["best"] = st.bad_validations == 0
    trainer.log(row)
    trainer.reporter.validation(row)
    if trainer.world.main:
        _after_validation(trainer)
    if stop:
        trainer.reporter.message(f"early stopping: no dev BLEU gain in {st.bad_validations} validations")
    return stop


def _attention_image(trainer: Trainer) -> None:
    """Watch alignment emerge: the first dev pair's attention (forced decoding) at this step."""
    from seq2attn.inference.alignment import draw_pair

    if not trainer.dev.src:
        return
    path = trainer.out / "attention" / f"step-{trainer.state.step}.png"
    _picture("the attention image", trainer, lambda: draw_pair(
        trainer.model, trainer.codec, src=trainer.dev.src[0], tgt=trainer.dev.tgt[0],
        max_length=trainer.cfg.data.max_length, device=trainer.device, path=path,
        title=f"step {trainer.state.step}: {trainer.dev.src[0]}  ->  {trainer.dev.tgt[0]}"))
    if trainer.board is not None and path.exists():
        _picture("the attention image in TensorBoard", trainer, lambda: trainer.board.image(path, trainer.state.step))


def _picture(what: str, trainer: Trainer, draw: Callable[[], None]) -> None:
    try:
        draw()
    except Exception as e:  # noqa: BLE001 - a picture is never worth a failed training run
        trainer.reporter.message(f"could not save {what} ({type(e).__name__}: {e})")


def _tune_alpha(trainer: Trainer) -> None:
    """train.tune_alpha: choose decode.alpha on the dev set once the weights are final."""
    from seq2attn.run.alpha import tune_alpha

    row = tune_alpha(trainer.out, device=trainer.device)
    scores = ", ".join(f"{a}: {b:.2f}" for a, b in row["dev_bleu_by_alpha"].items())
    trainer.reporter.message(f"decode.alpha = {row['alpha']:g}, chosen on dev with beam {row['beam']} "
                             f"(dev BLEU by alpha: {scores})")


def _average(trainer: Trainer) -> None:
    """Average the kept validation checkpoints (train.average_last), score and save the average."""
    kept = len(snapshots(trainer.out))
    if not kept:
        return
    entry = average_last(trainer.out, trainer.model, last=min(trainer.cfg.train.average_last, kept),
                         score=trainer.validate, device=trainer.device)
    trainer.reporter.message(f"averaged the checkpoints of steps {', '.join(map(str, entry['steps']))}: dev BLEU "
                             f"{entry['dev_bleu']:.2f} (best checkpoint: {trainer.state.best_bleu:.2f})")
    if trainer.cfg.train.curve:
        _picture("the learning curve", trainer, lambda: draw_curve(trainer.out))


def _limit_reached(tc: TrainConfig, st: TrainState, minutes: float, world: World, device: torch.device) -> bool:
    if ((tc.max_steps is not None and st.step >= tc.max_steps)
            or (tc.max_epochs is not None and st.epoch >= tc.max_epochs)):
        return True
    if tc.max_minutes is None or not _sync_point(tc, st, world):
        return False
    return distributed.any_rank(world, minutes >= tc.max_minutes, device)


def train(cfg: Config, out: str | Path, *, resume: bool = False, reporter: Reporter | None = None) -> TrainState:
    """Train a model into directory ``out`` (see :mod:`seq2attn.modeldir.checkpoint` for its files)."""
    trainer = build_trainer(cfg, Path(out), resume=resume, reporter=reporter or Reporter())
    try:
        return run(trainer)
    finally:
        trainer.release()
