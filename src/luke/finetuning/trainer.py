"""The one fine-tuning loop, on ``accelerate``: single process, multi-process DDP (``accelerate launch`` /
``torchrun``), bf16/fp16 autocast, gradient accumulation, resumable, TensorBoard, progress bars.

Optimiser and schedule follow the paper recipe (spec §3.0): AdamW β=(0.9, 0.98), ε=1e-6, weight decay
0.01 except biases and LayerNorm weights, linear warm-up over 6 % of the steps then linear decay, no
gradient clipping by default.  (``torch.optim.AdamW`` is bias-corrected, like the 2021 code; the 2020
code had bias correction off.)

Each epoch ends with a dev evaluation when a dev set is given; with ``select_best`` the weights of the
best dev epoch are kept (in ``OUTPUT/best/``, written under a temporary name and renamed) and restored at the
end.  State for resuming is written to ``OUTPUT/checkpoint/`` at every epoch end (and every ``save_steps``
optimiser steps); ``resume=True`` continues from it, mid-epoch included (the epoch's shuffling is a function of
the seed and the epoch), and the resumed run is the uninterrupted one.  The checkpoint holds plain files that
load without unpickling anything (a tampered or damaged one is a :class:`~luke.errors.CheckpointError`):
``model.safetensors`` (the unwrapped model), ``optimizer.pt`` (loaded with ``torch.load(weights_only=True)``),
``scheduler.json``, ``scaler.json`` (fp16 only), ``rng-rankR.pt`` (each process's RNG states as tensors and
integers) and ``trainer_state.json``.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, fields, is_dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.data_loader import prepare_data_loader
from accelerate.utils import set_seed
from torch import nn
from torch.utils.data import DataLoader, Sampler
from tqdm.auto import tqdm

from luke.errors import CheckpointError, ConfigError, DataError, shorten
from luke.files import atomic_output, check_output, sweep_leftovers
from luke.finetuning.options import TrainingArguments
from luke.finetuning.tasks.base import Feature, Task
from luke.training import (
    CheckpointFolders,
    create_accelerator,
    fault,
    load_json_state,
    load_optimizer_state,
    load_rng_state,
    load_scheduler_state,
    parameter_groups,
    progress_bar,
    save_json_state,
    save_rng_state,
    tensorboard_available,
    warmup_factor,
)

__all__ = ["TrainingArguments", "Trainer", "predict_logits", "make_accelerator"]

logger = logging.getLogger(__name__)

#: the loop settings a resumed run must share with the interrupted one (the others, e.g. --max-steps,
#: --save-steps, --logging-steps or --eval-batch-size, may change)
_RUN_OPTIONS = (
    "learning_rate", "train_batch_size", "gradient_accumulation_steps", "num_train_epochs", "seed", "select_best",
    "warmup_ratio", "weight_decay", "max_grad_norm", "adam_beta1", "adam_beta2", "adam_epsilon", "mixed_precision",
    "entity_query_lr_scale",
)  # fmt: skip


def make_accelerator(args: TrainingArguments | None = None, **kw: Any) -> Accelerator:
    """An ``Accelerator`` for the loop: from ``args`` (TensorBoard tracking when the ``tensorboard`` package is
    present), or from ``kw`` (``cpu=False, mixed_precision="no"`` unless given). Created by
    :func:`luke.training.create_accelerator`, so runs with other settings may precede it in this process."""
    if args is None:
        return create_accelerator(cpu=kw.pop("cpu", False), mixed_precision=kw.pop("mixed_precision", "no"), **kw)
    return create_accelerator(
        cpu=args.cpu,
        mixed_precision=args.mixed_precision,
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        log_with="tensorboard" if args.tensorboard and tensorboard_available() else None,
        project_dir=str(args.output_dir),
    )


class EpochShuffler(Sampler[int]):
    """A permutation of ``range(n)`` that is a pure function of (seed, epoch): resuming mid-epoch replays
    the same order, and every DDP process sees the same one (accelerate then shards the batches)."""

    def __init__(self, n: int, seed: int) -> None:
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        return iter(np.random.RandomState(self.seed + self.epoch).permutation(self.n).tolist())

    def __len__(self) -> int:
        return self.n


def _loader(
    features: Sequence[Feature],
    order: Sequence[int] | Sampler[int],
    batch_size: int,
    collate: Callable,
    indexed: bool = False,
) -> DataLoader:
    """Batches of ``features`` in ``order`` (a list or a sampler); with ``indexed`` each batch also carries
    ``feature_index``."""

    def fn(idx: list[int]) -> dict[str, torch.Tensor]:
        batch = collate([features[i] for i in idx])
        if indexed:
            batch["feature_index"] = torch.tensor(idx)
        return batch

    # Own generator: starting an epoch must not draw from the global RNG (dropout), or a resumed run would
    # see different dropout masks than an uninterrupted one.
    generator = torch.Generator().manual_seed(0)
    if isinstance(order, Sampler):
        return DataLoader(
            range(len(features)), batch_size=batch_size, sampler=order, collate_fn=fn, generator=generator
        )
    return DataLoader(list(order), batch_size=batch_size, shuffle=False, collate_fn=fn, generator=generator)


def _num_tokens(f: Feature) -> int:
    return len(f["input_ids"]) + len(f["entity_ids"])


@torch.no_grad()
def predict_logits(
    model: nn.Module,
    task: Task,
    features: Sequence[Feature],
    batch_size: int,
    pad_token_id: int,
    accelerator: Accelerator | None = None,
    progress: bool = True,
    desc: str = "eval",
) -> list[np.ndarray]:
    """Logits of every feature (in ``features`` order; per-entity rows trimmed to the feature's entities).

    Features are batched by length (less padding); under DDP each process scores a shard and the results
    are gathered."""
    accelerator = accelerator or Accelerator(cpu=True)
    was_training = model.training
    model.eval()
    order = sorted(range(len(features)), key=lambda i: _num_tokens(features[i]))
    # Not registered with the accelerator (no state to checkpoint); shards batches under DDP.
    loader = prepare_data_loader(
        _loader(features, order, batch_size, partial(task.collate, pad_token_id=pad_token_id), indexed=True),
        device=accelerator.device,
        num_processes=accelerator.num_processes,
        process_index=accelerator.process_index,
    )
    out: list[np.ndarray | None] = [None] * len(features)
    for batch in tqdm(loader, desc=desc, disable=not (progress and accelerator.is_local_main_process), leave=False):
        index = batch.pop("feature_index")
        for key in task.label_keys:
            batch.pop(key, None)
        logits = task.output_logits(model(**batch)).float()
        if accelerator.num_processes > 1:
            logits = accelerator.pad_across_processes(logits, dim=1) if logits.dim() >= 2 else logits
            logits, index = accelerator.gather_for_metrics((logits, index))
        logits = logits.cpu().numpy()
        for row, i in zip(logits, index.tolist(), strict=True):
            out[i] = task.trim_logits(row, features[i])
    model.train(was_training)
    return out  # type: ignore[return-value]


def evaluate(
    model: nn.Module, task: Task, examples: Sequence[Any], features: Sequence[Feature], *args: Any, **kwargs: Any
) -> tuple[dict[str, Any], list]:
    """(metrics, predictions) of ``model`` on ``examples`` (through :meth:`Task.predict`); the other arguments
    (``batch_size``, ``pad_token_id``, ``accelerator``, ``progress``, ``desc``) are :func:`predict_logits`'s."""
    predictions = task.predict(model, examples, features, *args, **kwargs)
    return task.score(examples, predictions), predictions


#: the entity-aware attention's extra query matrices (their learning rate: ``entity_query_lr_scale``)
ENTITY_QUERY_SUFFIXES = tuple(f".{q}_query.{p}" for q in ("w2e", "e2w", "e2e") for p in ("weight", "bias"))


class Trainer:
    """Fine-tunes ``model`` on ``train_features`` for ``task`` (see the module docstring).

    Args:
        model: a ``luke.modeling`` head model, or the matching ``transformers`` class (same inputs).
        task: the task (collate, decode, score).
        args: loop settings.
        train_features: training features.
        pad_token_id: word padding id.
        dev: optional ``(examples, features)`` evaluated at every epoch end.
        save_model: ``save_model(model, folder)`` writes a model folder (default ``model.save_pretrained``).
    """

    def __init__(
        self,
        model: nn.Module,
        task: Task,
        args: TrainingArguments,
        train_features: Sequence[Feature],
        pad_token_id: int,
        dev: tuple[Sequence[Any], Sequence[Feature]] | None = None,
        save_model: Callable[[nn.Module, Path], None] | None = None,
    ) -> None:
        if not train_features:
            raise DataError("no training features")
        if args.mixed_precision == "fp16" and (args.cpu or not torch.cuda.is_available()):
            raise ConfigError("fp16 autocast needs a GPU; use --mixed-precision bf16 on CPU")
        check_output(args.output_dir, kind="dir", exist_ok=True, what="--output-dir")  # before any work
        self.task, self.args, self.features, self.dev = task, args, list(train_features), dev
        self.pad_token_id = pad_token_id
        self.save_model = save_model or (lambda m, folder: m.save_pretrained(folder))
        self.accelerator = make_accelerator(args)
        if not logger.isEnabledFor(logging.DEBUG):  # accelerate logs every file of every checkpoint at INFO
            logging.getLogger("accelerate").setLevel(logging.WARNING)
        set_seed(args.seed)
        self.collate = partial(task.collate, pad_token_id=pad_token_id)
        self.batches_per_epoch = math.ceil(
            len(self.features) / (args.train_batch_size * self.accelerator.num_processes)
        )
        self.steps_per_epoch = max(1, math.ceil(self.batches_per_epoch / args.gradient_accumulation_steps))
        self.total_steps = max(1, int(math.ceil(self.steps_per_epoch * args.num_train_epochs)))
        # Parameters that never reach the loss (the [CLS] pooler, which no entity head uses; the last
        # layer's word queries when the head reads entity states only): frozen, so DDP does not wait for
        # gradients that never come (and AdamW's weight decay does not shrink them).
        unused = set(getattr(model, "unused_parameter_names", list)())
        for name, param in model.named_parameters():
            if name in unused or name.startswith(("luke.pooler.", "pooler.")):
                param.requires_grad_(False)
        for name, param in model.named_parameters():  # the entity-aware queries' own learning rate
            if name.endswith(ENTITY_QUERY_SUFFIXES):
                param.lr_scale = args.entity_query_lr_scale
        self.model = model
        # fused=True: one kernel for the whole update, several times faster on CPU than the default
        # per-tensor loop (benchmarks/profile_step.py --kernels); the same numbers up to rounding.
        # transformers' Trainer does the same by default with torch >= 2.8 ("adamw_torch_fused").
        self.optimizer = torch.optim.AdamW(
            parameter_groups(model, args.weight_decay, args.learning_rate),
            lr=args.learning_rate,
            betas=(args.adam_beta1, args.adam_beta2),
            eps=args.adam_epsilon,
            fused=True,
        )
        warmup, total = int(self.total_steps * args.warmup_ratio), self.total_steps
        # Warm-up to the peak at step ``warmup``, then linear decay. A plain function, not a callable object:
        # LambdaLR saves no state for it, so a resumed run's schedule follows the current arguments.
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: warmup_factor(step, warmup, total, ramp_steps=warmup + 1)
        )
        self.sampler = EpochShuffler(len(self.features), args.seed)
        self.model, self.optimizer, self.loader = self.accelerator.prepare(
            self.model, self.optimizer, _loader(self.features, self.sampler, args.train_batch_size, self.collate)
        )
        self.running = (0.0, 0)  # the training loss summed since the last log line, and over how many batches
        self.state: dict[str, Any] = {"global_step": 0, "best_metric": None, "best_epoch": None, "history": []}

    # ------------------------------------------------------------------------------------ state
    @property
    def checkpoint_dir(self) -> Path:
        return Path(self.args.output_dir) / "checkpoint"

    @property
    def best_dir(self) -> Path:
        return Path(self.args.output_dir) / "best"

    @property
    def checkpoints(self) -> CheckpointFolders:
        """The one resume checkpoint, ``OUTPUT/checkpoint/`` (see the module docstring), replaced atomically
        at each save."""
        return CheckpointFolders(self.checkpoint_dir.parent, self.checkpoint_dir.name)

    def _save_checkpoint(self) -> None:
        from safetensors.torch import save_model

        acc = self.accelerator
        loop = {"processes": acc.num_processes, "accelerator_step": acc.step, "running": list(self.running),
                "options": self._run_options()}  # fmt: skip

        def write(folder: Path) -> None:
            save_rng_state(folder / f"rng-rank{acc.process_index}.pt")
            if acc.is_main_process:
                save_model(self.unwrapped, str(folder / "model.safetensors"))
                torch.save(self.optimizer.state_dict(), folder / "optimizer.pt")
                save_json_state(folder / "scheduler.json", self.scheduler.state_dict())
                if acc.scaler is not None:
                    save_json_state(folder / "scaler.json", acc.scaler.state_dict())
                fault(f"checkpoint:{self.state['global_step']}")

        self.checkpoints.save(self.checkpoint_dir.name, {**self.state, "loop": loop}, write, acc)

    def _try_resume(self) -> None:
        if not self.args.resume:
            return
        folder = self.checkpoints.latest()
        if folder is None:
            logger.info("no checkpoint in %s: starting from scratch", self.checkpoint_dir)
            return
        state = CheckpointFolders.read_state(folder)
        loop = self._check_state(folder, state)
        self._load_model(folder / "model.safetensors")
        acc = self.accelerator
        load_optimizer_state(self.optimizer, folder / "optimizer.pt")  # cast to each parameter's device
        load_scheduler_state(self.scheduler, folder / "scheduler.json")
        if acc.scaler is not None:
            scaler = load_json_state(folder / "scaler.json", "gradient scaler state")
            try:
                acc.scaler.load_state_dict(scaler)
            except Exception as err:  # noqa: BLE001 - a file of the wrong shape
                raise CheckpointError(f"{folder / 'scaler.json'}: not a valid gradient scaler state ({err})") from None
        load_rng_state(folder / f"rng-rank{acc.process_index}.pt")
        acc.step = loop["accelerator_step"]
        self.running = (float(loop["running"][0]), int(loop["running"][1]))
        self.state = state
        logger.info("resumed from %s at optimiser step %d", folder, self.state["global_step"])

    def _run_options(self) -> dict[str, Any]:
        """The settings that make a run what it is (a resumed run must have the same), by flag, JSON-safe."""
        values = {f"--{k.replace('_', '-')}": getattr(self.args, k) for k in _RUN_OPTIONS}
        options = getattr(self.task, "options", None)
        if is_dataclass(options):
            values |= {f"--{f.name.replace('_', '-')}": getattr(options, f.name) for f in fields(options)}
        values["training features"] = len(self.features)
        return json.loads(json.dumps(values, default=str))

    def _check_options(self, where: Path, saved: Any) -> None:
        """:class:`ConfigError` listing the settings that differ from those the checkpoint was written with
        (a checkpoint of an older version, without them, is not checked)."""
        if not isinstance(saved, dict):
            return
        current = self._run_options()
        changed = [f"{k} {saved[k]} -> {v}" for k, v in current.items() if k in saved and saved[k] != v]
        if changed:
            raise ConfigError(
                f"--resume: {where} was written with other settings ({shorten('; '.join(changed), 300)}); resume "
                "with the same ones, or use another --output-dir"
            )

    def _check_state(self, folder: Path, state: dict[str, Any]) -> dict[str, Any]:
        """The loop settings of ``trainer_state.json`` (popped from ``state``), checked against this run."""
        where = folder / "trainer_state.json"
        loop = state.pop("loop", None)
        try:
            ok = (
                isinstance(state.get("global_step"), int)
                and state["global_step"] >= 0
                and isinstance(state.get("history"), list)
                and isinstance(loop, dict)
                and isinstance(loop["processes"], int)
                and isinstance(loop["accelerator_step"], int)
                and isinstance(loop["running"][0], int | float)
                and isinstance(loop["running"][1], int)
            )
        except (KeyError, IndexError, TypeError):
            ok = False
        if not ok:
            raise CheckpointError(f"{where}: not a valid fine-tuning trainer state (written by another version?)")
        if loop["processes"] != self.accelerator.num_processes:
            raise CheckpointError(
                f"{where}: written by {loop['processes']} processes, resumed with {self.accelerator.num_processes}; "
                "resume with the same count"
            )
        self._check_options(where, loop.get("options"))
        return loop

    def _load_model(self, path: Path) -> None:
        from safetensors.torch import load_model

        if not path.is_file():
            raise CheckpointError(f"{path}: missing (model weights); the checkpoint is incomplete")
        try:
            load_model(self.unwrapped, str(path), strict=True)  # read on the CPU, copied to the model's device
        except Exception as err:  # noqa: BLE001 - not safetensors, or the weights of another model
            reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise CheckpointError(f"{path}: not valid model weights for this model ({reason[:160]})") from None

    def _log(self, values: dict[str, float], step: int) -> None:
        if self.accelerator.trackers:
            self.accelerator.log(values, step=step)

    # ------------------------------------------------------------------------------------ loop
    def train(self) -> dict[str, Any]:
        """Run the loop; returns the trainer state (history of losses and dev metrics, best epoch, time)."""
        args, acc = self.args, self.accelerator
        check_output(args.output_dir, kind="dir", exist_ok=True, what="--output-dir")
        Path(args.output_dir).mkdir(parents=True, exist_ok=True)
        if getattr(acc, "log_with", None):
            hp = {k: v for k, v in asdict(args).items() if isinstance(v, int | float | str | bool)}
            acc.init_trackers("tensorboard", config=hp)
        self._try_resume()
        start = time.perf_counter()
        step = self.state["global_step"]
        n_epochs = math.ceil(args.num_train_epochs)
        metric = self.task.main_metric
        main = acc.is_local_main_process and args.progress
        bar = progress_bar(self.total_steps, step, f"train {self.task.name}", main)
        running, n_running = self.running
        self.model.train()
        stop = False
        for epoch in range(step // self.steps_per_epoch, n_epochs):
            self.sampler.set_epoch(epoch)
            loader = self.loader
            done_batches = (step - epoch * self.steps_per_epoch) * args.gradient_accumulation_steps
            if done_batches > 0:
                loader = acc.skip_first_batches(loader, done_batches)
            for batch in loader:
                with acc.accumulate(self.model):
                    loss = self.model(**batch).loss
                    acc.backward(loss)
                    if acc.sync_gradients and args.max_grad_norm > 0:
                        acc.clip_grad_norm_(self.model.parameters(), args.max_grad_norm)
                    self.optimizer.step()
                    self.optimizer.zero_grad(set_to_none=True)
                running += float(loss.detach())
                n_running += 1
                if not acc.sync_gradients:
                    continue
                self.scheduler.step()
                step += 1
                self.state["global_step"] = step
                bar.update(1)
                if step % args.logging_steps == 0 or step == self.total_steps:
                    avg = running / max(n_running, 1)
                    bar.set_postfix(loss=f"{avg:.4f}")
                    if not main and acc.is_local_main_process:  # no progress bar: say it in the log
                        logger.info("step %d/%d: loss %.4f", step, self.total_steps, avg)
                    self._log({"train/loss": avg, "train/lr": self.scheduler.get_last_lr()[0]}, step)
                    self.state["history"].append({"step": step, "epoch": epoch, "loss": avg})
                    running, n_running = 0.0, 0
                self.running = (running, n_running)
                fault(f"step:{step}")
                if args.save_steps and step % args.save_steps == 0:
                    self._save_checkpoint()
                if step >= self.total_steps or (args.max_steps and step >= args.max_steps):
                    stop = True
                    break
            self._end_epoch(epoch, metric)
            self._save_checkpoint()
            fault(f"epoch-end:{epoch + 1}")
            if stop:
                break
        bar.close()
        self.state["train_seconds"] = self.state.get("train_seconds", 0.0) + time.perf_counter() - start
        if args.select_best and self.dev is not None and self.best_dir.is_dir():
            self._restore_best()
        return self.state

    def _end_epoch(self, epoch: int, metric: str) -> None:
        if self.dev is None:
            return
        examples, features = self.dev
        scores, predictions = evaluate(
            self.unwrapped,
            self.task,
            examples,
            features,
            self.args.eval_batch_size,
            self.pad_token_id,
            self.accelerator,
            self.args.progress,
            desc=f"dev epoch {epoch + 1}",
        )
        # The final model's dev result, reusable without another pass (see ``final_dev_evaluation``).
        self.last_dev = (self.state["global_step"], scores, predictions)
        value = float(scores[metric])
        entry = {"epoch": epoch + 1, "step": self.state["global_step"], f"dev_{metric}": value}
        self.state["history"].append(entry)
        self._log({f"dev/{metric}": value}, self.state["global_step"])
        logger.info("epoch %d: dev %s = %.4f", epoch + 1, metric, value)
        best = self.state["best_metric"]
        if self.args.select_best and (best is None or value > best):
            self.state["best_metric"], self.state["best_epoch"] = value, epoch + 1
            self.state["best_step"] = self.state["global_step"]
            if self.accelerator.is_main_process:
                with atomic_output(self.best_dir, "dir") as tmp:
                    self.save_model(self.unwrapped, tmp)
                    fault(f"best:{epoch + 1}")
            self.accelerator.wait_for_everyone()

    def _restore_best(self) -> None:
        from safetensors.torch import load_file

        weights = self.best_dir / "model.safetensors"
        if weights.is_file():
            try:
                state = load_file(str(weights))
                own = self.unwrapped.state_dict()
                missing = [k for k in own if k not in state]
                self.unwrapped.load_state_dict({k: state.get(k, v) for k, v in own.items()})
            except Exception as err:  # noqa: BLE001 - a damaged file of an earlier run
                reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
                message = f"{weights}: the best epoch's weights cannot be restored ({reason[:160]})"
                raise CheckpointError(message) from None
            if missing:
                logger.debug("restoring best weights: kept %d tied/alias tensors", len(missing))
            logger.info("restored the best dev weights (epoch %s)", self.state["best_epoch"])

    def final_dev_evaluation(self) -> tuple[dict[str, Any], list] | None:
        """(scores, predictions) of the last epoch-end dev evaluation if it scored the final weights (the
        run ended right after it and no earlier best epoch was restored), else None."""
        last = getattr(self, "last_dev", None)
        if last is None or last[0] != self.state["global_step"]:
            return None
        restored = self.args.select_best and self.state.get("best_step", last[0]) != last[0]
        return None if restored else (last[1], last[2])

    @property
    def unwrapped(self) -> nn.Module:
        return self.accelerator.unwrap_model(self.model)

    def cleanup(self, remove_checkpoints: bool = True) -> None:
        """End tracking (and the process group) and, by default, remove the resume checkpoint and the
        best-weights copy (call after the final model was saved and evaluated)."""
        self.accelerator.wait_for_everyone()
        if remove_checkpoints and self.accelerator.is_main_process:
            root = self.checkpoint_dir.parent
            aside = (
                root / f".tmp-{self.checkpoint_dir.name}",
                root / f"{CheckpointFolders.ASIDE}{self.checkpoint_dir.name}",
            )
            for folder in (self.checkpoint_dir, self.best_dir, *aside):
                shutil.rmtree(folder, ignore_errors=True)
            sweep_leftovers(self.best_dir)  # a best-weights copy a killed run left half-written
        self.accelerator.end_training()
