"""AdamW with optional bias correction (spec §2.8).

Parameter groups and the warm-up schedules are the training toolkit's (:mod:`luke.training`); they are
re-exported here for the code that imported them from this module."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

from luke.errors import ConfigError
from luke.training import NO_DECAY_SUFFIXES, WarmupSchedule, parameter_groups

__all__ = ["NO_DECAY_SUFFIXES", "LukeAdamW", "WarmupSchedule", "parameter_groups"]


class LukeAdamW(torch.optim.Optimizer):
    """AdamW (decoupled weight decay) with ``bias_correction`` optional.

    With ``bias_correction=True`` this is ``torch.optim.AdamW``; with ``False`` the update is
    ``lr · m / (sqrt(v) + eps)`` as in the original LUKE recipe and DeepSpeed's ``bias_correction: false``.
    """

    def __init__(
        self,
        params: Iterable[torch.nn.Parameter] | Iterable[dict],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-6,
        weight_decay: float = 0.0,
        bias_correction: bool = True,
    ) -> None:
        if lr < 0 or eps < 0 or not (0 <= betas[0] < 1 and 0 <= betas[1] < 1):
            raise ConfigError(f"invalid AdamW hyper-parameters lr={lr}, betas={betas}, eps={eps}")
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, bias_correction=bias_correction)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):  # type: ignore[override]
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            grads = [p.grad for p in params]
            beta1, beta2 = group["betas"]
            lr, wd, eps = group["lr"], group["weight_decay"], group["eps"]
            exp_avgs, exp_avg_sqs = [], []
            for p in params:
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["step"] += 1
                exp_avgs.append(state["exp_avg"])
                exp_avg_sqs.append(state["exp_avg_sq"])
            step = self.state[params[0]]["step"]
            if wd:
                torch._foreach_mul_(params, 1.0 - lr * wd)
            torch._foreach_lerp_(exp_avgs, grads, 1.0 - beta1)
            torch._foreach_mul_(exp_avg_sqs, beta2)
            torch._foreach_addcmul_(exp_avg_sqs, grads, grads, value=1.0 - beta2)
            denom = torch._foreach_sqrt(exp_avg_sqs)
            if group["bias_correction"]:
                bc1 = 1.0 - beta1**step
                bc2 = 1.0 - beta2**step
                torch._foreach_div_(denom, math.sqrt(bc2))
                step_size = lr / bc1
            else:
                step_size = lr
            torch._foreach_add_(denom, eps)
            torch._foreach_addcdiv_(params, exp_avgs, denom, value=-step_size)
        return loss
