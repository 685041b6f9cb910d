"""The training toolkit shared by the pretraining loop (:mod:`luke.pretraining.trainer`) and the fine-tuning
loop (:mod:`luke.finetuning.trainer`): each keeps its own loop and calls these pieces.

* :func:`create_accelerator`: an ``accelerate.Accelerator``, after resetting accelerate's process-wide state
  (the one place that does it).
* :data:`NO_DECAY_SUFFIXES` / :func:`parameter_groups`: weight decay everywhere but biases and LayerNorm weights.
* :func:`warmup_factor` / :class:`WarmupSchedule`: linear warm-up, then linear decay or a constant rate.
* :class:`CheckpointFolders`: atomic checkpoint folders (written under a temporary name, flushed and renamed),
  the latest complete one, keep-last-N; :func:`rng_state` / :func:`set_rng_state`; :func:`write_text_atomic`.
* Checkpoint files that load without running code (nothing in a checkpoint folder is ever unpickled):
  :func:`save_rng_state` / :func:`load_rng_state` (tensors and integers), :func:`load_tensors`
  (``torch.load(weights_only=True)``), :func:`save_json_state` / :func:`load_json_state`,
  :func:`load_optimizer_state`, :func:`load_scheduler_state`; every failure is a one-line
  :class:`~luke.errors.CheckpointError` naming the file.
* :class:`MetricsLog` (``metrics.jsonl`` + TensorBoard), :func:`tensorboard_available`, :func:`progress_bar`.
* :func:`fault`: the ``LUKE_FAULT`` test hook (kill the process at a named point).
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
import signal
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from luke.checkpoint import torch_load_safely
from luke.errors import CheckpointError, ConfigError, DataError, error_summary, shorten
from luke.files import read_json, text_lines, write_text_atomic

if TYPE_CHECKING:
    from accelerate import Accelerator
    from tqdm import tqdm

__all__ = [
    "NO_DECAY_SUFFIXES",
    "CheckpointFolders",
    "log_bf16_choice",
    "MetricsLog",
    "WarmupSchedule",
    "create_accelerator",
    "fault",
    "fsync_tree",
    "load_json_state",
    "load_optimizer_state",
    "load_rng_state",
    "load_scheduler_state",
    "load_tensors",
    "parameter_groups",
    "progress_bar",
    "rng_state",
    "save_json_state",
    "save_rng_state",
    "set_rng_state",
    "tensorboard_available",
    "warmup_factor",
    "write_text_atomic",
]

logger = logging.getLogger(__name__)

# Parameters without weight decay (spec §2.8 and §3.0): every bias and every LayerNorm weight.
NO_DECAY_SUFFIXES = ("bias", "LayerNorm.weight", "layer_norm.weight")
STATE_FILE = "trainer_state.json"  # written last into a checkpoint: its presence marks the folder complete


# ------------------------------------------------------------------------------------------- accelerate


def create_accelerator(**kwargs: Any) -> Accelerator:
    """``accelerate.Accelerator(**kwargs)`` after resetting accelerate's process-wide state.

    Why the reset: ``Accelerator`` stores its settings (mixed precision, gradient accumulation, ...) in
    singletons (``AcceleratorState``, ``GradientState``) that outlive it, and a second ``Accelerator`` in
    the same process with other settings is refused or silently takes the first one's. Resetting them here
    (the distributed set-up, ``PartialState``, is kept) lets several runs follow each other in one process:
    tests, a notebook, pretraining then fine-tuning. Every loop creates its accelerator through here."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state()
    GradientState._reset_state()
    accelerator = Accelerator(**kwargs)
    if kwargs.get("mixed_precision") == "bf16":
        log_bf16_choice(accelerator.device.type)
    return accelerator


def log_bf16_choice(device_type: str) -> None:
    """Say in the log what bf16 will be on this device: on a CPU, native (avx512_bf16 / amx_bf16) or emulated
    and slow (a warning, instead of running slowly without a word); on a GPU, nothing to say."""
    if device_type != "cpu":
        return
    from luke.kernels.cpu import bf16_verdict, cpu_info

    info = cpu_info()
    verdict = f"bf16 on CPU ({info.model}): {bf16_verdict(info)}"
    (logger.info if info.native_bf16 else logger.warning)(verdict)


# --------------------------------------------------------------------------------- optimiser and schedule


def parameter_groups(model: nn.Module, weight_decay: float, lr: float | None = None) -> list[dict[str, Any]]:
    """Trainable parameters in two groups: with ``weight_decay``, and without (names ending in
    :data:`NO_DECAY_SUFFIXES`, or parameters a task marked ``no_weight_decay``). Tied parameters appear once
    (``named_parameters`` lists each once). A parameter with an ``lr_scale`` attribute other than 1 (set by
    the trainer, e.g. ``entity_query_lr_scale``) goes into a further group of its own scale, whose ``lr`` is
    ``lr * lr_scale`` (then ``lr`` must be given)."""
    groups: dict[tuple[bool, float], list[nn.Parameter]] = {(False, 1.0): [], (True, 1.0): []}
    for name, param in model.named_parameters():
        if param.requires_grad:  # a task may exempt a parameter (``param.no_weight_decay = True``)
            exempt = name.endswith(NO_DECAY_SUFFIXES) or getattr(param, "no_weight_decay", False)
            groups.setdefault((exempt, float(getattr(param, "lr_scale", 1.0))), []).append(param)
    out = []
    for (exempt, scale), params in groups.items():
        group: dict[str, Any] = {"params": params, "weight_decay": 0.0 if exempt else weight_decay}
        if scale != 1.0:
            if lr is None:
                raise ConfigError("parameters with an lr_scale need the base learning rate")
            group["lr"] = lr * scale
        out.append(group)
    return out


def warmup_factor(
    step: int, warmup_steps: int, total_steps: int, kind: str = "warmup_linear", ramp_steps: int | None = None
) -> float:
    """LR multiplier at optimiser step ``step`` (0-based).

    During warm-up (``step < warmup_steps``) it is ``(step + 1) / ramp_steps`` (``ramp_steps`` defaults to
    ``warmup_steps``; fine-tuning uses ``warmup_steps + 1``); afterwards 1 for ``warmup_constant``, else a
    linear decay ``(total - step) / (total - warmup)`` that reaches ``1 / (total - warmup)`` at the last step."""
    if step < warmup_steps:
        return (step + 1) / (warmup_steps if ramp_steps is None else ramp_steps)
    if kind == "warmup_constant":
        return 1.0
    return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))


class WarmupSchedule:
    """:func:`warmup_factor` as a ``LambdaLR`` multiplier whose settings are saved with the scheduler's state
    (``LambdaLR.state_dict`` keeps a callable object's attributes)."""

    def __init__(self, warmup_steps: int, total_steps: int, kind: str = "warmup_linear") -> None:
        self.warmup_steps = warmup_steps
        self.total_steps = total_steps
        self.kind = kind

    def __call__(self, step: int) -> float:
        return warmup_factor(step, self.warmup_steps, self.total_steps, self.kind)


# ------------------------------------------------------------------------------------------ checkpoints


def fault(point: str) -> None:
    """Test hook: ``LUKE_FAULT=point`` kills this process with SIGKILL at that point (e.g. ``step:5``)."""
    if os.environ.get("LUKE_FAULT") == point:
        os.kill(os.getpid(), signal.SIGKILL)


def fsync_tree(folder: Path) -> None:
    """Flush every file below ``folder`` and the folder itself to disk."""
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as f:
                os.fsync(f.fileno())
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def rng_state() -> dict[str, Any]:
    """This process's torch, numpy, python (and CUDA) RNG states."""
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned."""
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _checkpoint_file(path: str | Path, what: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: missing ({what}); the checkpoint is incomplete or from another version")
    return path


def load_tensors(path: str | Path, what: str, map_location: Any = "cpu") -> Any:
    """``torch.load(path, weights_only=True)``: tensors and plain values only, never code. A missing, truncated,
    garbage or tampered file is a :class:`CheckpointError` naming it (``what``: what the file should hold)."""
    return torch_load_safely(_checkpoint_file(path, what), what, map_location)


def save_json_state(path: str | Path, state: dict[str, Any]) -> None:
    """Write a state dictionary of plain values (numbers, strings, lists, None) as JSON."""
    Path(path).write_text(json.dumps(state, indent=1) + "\n", encoding="utf-8")


def load_json_state(path: str | Path, what: str) -> dict[str, Any]:
    """A JSON object written by :func:`save_json_state`; anything else is a :class:`CheckpointError`."""
    path = _checkpoint_file(path, what)
    try:
        return read_json(path, dict)  # bad UTF-8 or JSON, not an object: the message names file and line
    except DataError as err:
        raise CheckpointError(f"{err} (not a valid {what} file)") from None


def save_rng_state(path: str | Path) -> None:
    """This process's RNG states (:func:`rng_state`) as tensors and integers, loadable by
    :func:`load_rng_state` without unpickling any object."""
    kind, key, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "kind": str(kind),
            "key": torch.from_numpy(np.asarray(key, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": {"version": int(version), "internal": torch.tensor(internal, dtype=torch.int64), "gauss": gauss},
    }
    if torch.cuda.is_available():
        state["cuda"] = list(torch.cuda.get_rng_state_all())
    torch.save(state, path)


def load_rng_state(path: str | Path) -> None:
    """Restore what :func:`save_rng_state` wrote (weights-only load; a bad file is a :class:`CheckpointError`)."""
    state = load_tensors(path, "RNG state")
    try:
        n, p = state["numpy"], state["python"]
        numpy_state = (n["kind"], n["key"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"])
        python_state = (p["version"], tuple(int(x) for x in p["internal"].tolist()), p["gauss"])
        torch.set_rng_state(state["torch"])
        np.random.set_state(numpy_state)
        random.setstate(python_state)
        if "cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])
    except Exception as err:  # noqa: BLE001 - a file of the wrong shape
        raise CheckpointError(f"{path}: not a valid RNG state file ({error_summary(err)})") from None


def load_optimizer_state(optimizer: Any, path: str | Path, map_location: Any = "cpu") -> None:
    """``optimizer.load_state_dict`` from a ``torch.save`` d state dict, loaded weights-only; every
    per-parameter tensor (moments) must have its parameter's shape."""
    state = load_tensors(path, "optimizer state", map_location)
    try:
        if not isinstance(state, dict) or set(state) != {"state", "param_groups"}:
            raise ValueError("expected an optimizer state dict")
        optimizer.load_state_dict(state)
        for group in optimizer.param_groups:
            for param in group["params"]:
                for key, value in optimizer.state.get(param, {}).items():
                    if torch.is_tensor(value) and value.dim() > 0 and value.shape != param.shape:
                        raise ValueError(
                            f"{key} has shape {tuple(value.shape)} for a parameter of {tuple(param.shape)}"
                        )
    except Exception as err:  # noqa: BLE001 - a file of the wrong shape or for another model
        raise CheckpointError(f"{path}: does not fit this optimizer ({error_summary(err)})") from None


def load_scheduler_state(scheduler: Any, path: str | Path) -> None:
    """``scheduler.load_state_dict`` from the JSON written by :func:`save_json_state`; the keys and the
    schedule's stored settings must be those of ``scheduler``'s own state."""
    state = load_json_state(path, "scheduler state")
    own = scheduler.state_dict()
    try:
        if set(state) != set(own):
            raise ValueError(f"expected the keys {sorted(own)}, got {shorten(sorted(state))}")
        for key, mine in own.items():
            _same_shape(key, state[key], mine)
        # The schedule and the peak rates come from this run's settings (a resume refuses changed ones), so a
        # file that says otherwise was edited: refuse it rather than train at lr 0 or NaN.
        for key in ("base_lrs", "lr_lambdas"):
            if key in own and state[key] != own[key]:
                raise ValueError(
                    f"{key!r} is {shorten(json.dumps(state[key]), 80)}, this run's is {json.dumps(own[key])}"
                )
        step = state.get("last_epoch")
        if isinstance(step, int) and step < 0:
            raise ValueError(f"'last_epoch' must be >= 0, got {step}")
        lambdas, own_lambdas = state.get("lr_lambdas"), own.get("lr_lambdas")
        if own_lambdas is not None and (
            not isinstance(lambdas, list)
            or len(lambdas) != len(own_lambdas)
            or any(
                (a is None) != (b is None) or (isinstance(b, dict) and set(a or {}) != set(b))
                for a, b in zip(lambdas, own_lambdas, strict=True)
            )
        ):
            raise ValueError("its learning-rate schedule is not this run's")
        scheduler.load_state_dict(state)
    except Exception as err:  # noqa: BLE001 - a file of the wrong shape
        raise CheckpointError(f"{path}: does not fit this scheduler ({error_summary(err)})") from None


def _same_shape(key: str, theirs: Any, mine: Any) -> None:
    """``theirs`` (from a file) has the JSON shape of ``mine`` (this run's value): same kind, same length."""
    number = (int, float)
    if mine is None:
        ok = theirs is None
    elif isinstance(mine, bool):
        ok = isinstance(theirs, bool)
    elif isinstance(mine, number):
        ok = isinstance(theirs, number) and not isinstance(theirs, bool)
    elif isinstance(mine, list):
        ok = isinstance(theirs, list) and len(theirs) == len(mine)
        if ok:
            for a, b in zip(theirs, mine, strict=True):
                _same_shape(key, a, b)
    else:
        ok = isinstance(theirs, type(mine))
    if not ok:
        raise ValueError(
            f"{key!r} should look like {shorten(json.dumps(mine), 60)}, got {shorten(json.dumps(theirs), 60)}"
        )


class CheckpointFolders:
    """Checkpoint folders ``root/NAME`` written atomically, with an optional pointer file and keep-last-N.

    :meth:`save` writes into ``root/.tmp-NAME`` (every process may write its part), then the main process
    writes ``trainer_state.json`` last, flushes the folder and renames it to ``root/NAME``; with ``pointer``
    the file ``root/POINTER`` is then replaced atomically by ``NAME``. A folder without
    ``trainer_state.json`` is incomplete and never resumed from, so a crash or a full disk during a write
    leaves the previous checkpoint as the resume point.

    Args:
        root: the folder holding the checkpoints.
        pattern: glob of the checkpoint names (their sorted order is their age: oldest first).
        pointer: name of the file naming the latest checkpoint (None: no pointer).
        keep: how many complete checkpoints to keep (None: all).
    """

    def __init__(self, root: Path, pattern: str, pointer: str | None = None, keep: int | None = None) -> None:
        self.root, self.pattern, self.pointer, self.keep = Path(root), pattern, pointer, keep

    ASIDE = ".old-"  # prefix of a checkpoint set aside while one of the same name replaces it

    def complete(self) -> list[Path]:
        """The complete checkpoints, oldest first."""
        if not self.root.is_dir():
            return []
        return sorted(p for p in self.root.glob(self.pattern) if (p / STATE_FILE).is_file())

    def latest(self) -> Path | None:
        """The checkpoint named by the pointer file if complete, else the newest complete one (or None).

        When none is left because a save was killed between setting the old folder aside and renaming the
        new one into place (:meth:`save` of an existing name), the folder set aside is the latest."""
        if self.pointer is not None and (self.root / self.pointer).is_file():
            try:
                name = (self.root / self.pointer).read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError):
                name = ""
            candidate = self.root / name
            if name and "/" not in name and candidate.match(self.pattern) and (candidate / STATE_FILE).is_file():
                return candidate
        complete = self.complete()
        if complete:
            return complete[-1]
        aside = sorted(p for p in self.root.glob(self.ASIDE + self.pattern) if (p / STATE_FILE).is_file())
        return aside[-1] if aside else None

    @staticmethod
    def read_state(folder: Path) -> dict[str, Any]:
        """The ``trainer_state.json`` of a checkpoint (a :class:`CheckpointError` when it is not a JSON object)."""
        return load_json_state(Path(folder) / STATE_FILE, "trainer state")

    def save(self, name: str, state: dict[str, Any], write: Callable[[Path], None], accelerator: Accelerator) -> Path:
        """Write checkpoint ``name``: ``write(tmp_folder)`` on every process, then ``state`` as
        ``trainer_state.json`` and the rename on the main process. Returns the final folder."""
        main = accelerator.is_main_process
        tmp, final = self.root / f".tmp-{name}", self.root / name
        if main:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
        accelerator.wait_for_everyone()
        write(tmp)
        accelerator.wait_for_everyone()
        if main:
            fsync_tree(tmp)  # the files are on disk before the state file says the folder is complete
            write_text_atomic(tmp / STATE_FILE, json.dumps(state, indent=2) + "\n")
            fsync_tree(tmp)
            self._publish(tmp, final)
        accelerator.wait_for_everyone()
        return final

    def _publish(self, tmp: Path, final: Path) -> None:
        aside = self.root / f"{self.ASIDE}{final.name}"
        if final.exists():  # a checkpoint of the same name (fine-tuning's single folder): set it aside first
            shutil.rmtree(aside, ignore_errors=True)
            os.replace(final, aside)
            fault(f"publish:{final.name}")  # killed here, latest() finds the folder set aside
            os.replace(tmp, final)
        else:
            os.replace(tmp, final)
        shutil.rmtree(aside, ignore_errors=True)
        if self.pointer is not None:
            write_text_atomic(self.root / self.pointer, final.name + "\n")
        if self.keep is not None:
            for old in self.complete()[: -self.keep]:
                shutil.rmtree(old, ignore_errors=True)


# ---------------------------------------------------------------------------------------------- logging


def tensorboard_available() -> bool:
    """Whether the ``tensorboard`` package is installed (a warning when it is not)."""
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        logger.warning("the tensorboard package is not installed: no TensorBoard logs (pip install tensorboard)")
        return False
    return True


def progress_bar(total: int, initial: int, desc: str, enabled: bool, **kwargs: Any) -> tqdm:
    """The training progress bar (optimiser steps); a silent one when not ``enabled``."""
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, disable=not enabled, **kwargs)


class MetricsLog:
    """``metrics.jsonl`` (one JSON object per logged step, read by ``luke plot-training``) + TensorBoard
    (``OUTPUT/tensorboard``; ``eval_X`` is logged as ``eval/X``).

    ``resume_step``: the step a resumed run continues from; records logged after it by the interrupted
    run are dropped (None: a new run, the file is emptied). Nothing is written when not ``enabled``."""

    def __init__(self, output_dir: Path, enabled: bool, tensorboard: bool, resume_step: int | None) -> None:
        self.enabled = enabled
        self.path = Path(output_dir) / "metrics.jsonl"
        self.writer = None
        if not enabled:
            return
        if resume_step is not None and self.path.is_file():
            kept = []
            for number, line in text_lines(self.path):  # a bad byte or line: DataError with file and line
                if not line.strip():
                    continue
                try:
                    step = json.loads(line)["step"]
                except (json.JSONDecodeError, TypeError, KeyError):
                    step = None
                if not isinstance(step, int) or isinstance(step, bool):
                    raise DataError(
                        self.path, f"expected a JSON object with an integer 'step', got {shorten(line)}", number
                    )
                if step <= resume_step:
                    kept.append(line)
            write_text_atomic(self.path, "".join(x + "\n" for x in kept))
        elif resume_step is None:
            self.path.write_text("")
        if tensorboard and tensorboard_available():
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(Path(output_dir) / "tensorboard"), purge_step=resume_step)

    def log(self, record: dict[str, Any]) -> None:
        """Append ``record`` (which has a ``step``)."""
        if not self.enabled:
            return
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
        if self.writer is not None:
            for key, value in record.items():
                if isinstance(value, (int, float)) and key != "step":
                    self.writer.add_scalar(key.replace("eval_", "eval/"), value, record["step"])

    def close(self) -> None:
        """Flush and close TensorBoard."""
        if self.writer is not None:
            self.writer.close()
