"""One optimizer step under Lightning manual optimization, shared by every adversarial module."""

from typing import Any

from torch import Tensor

from lightning_modules.training.guards import check_finite


class ManualOptimizerStep:
    """Mixin for LightningModules with `automatic_optimization = False` and several players.

    `optimize` is the one step every player takes; gradients are clipped by norm to
    `hparams.gradient_clip_val` (when set) in `on_before_optimizer_step`.
    """

    def optimize(self, loss: Tensor, name: str, optimizer: Any) -> None:
        """Check `loss` is finite, then zero the gradients, back-propagate and step `optimizer`.

        `optimizer` is the LightningOptimizer from `self.optimizers()` (it keeps AMP handling).
        """
        check_finite(name, loss, self.global_step)
        optimizer.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        optimizer.step()  # clips in on_before_optimizer_step

    def on_before_optimizer_step(self, optimizer: Any) -> None:
        # Lightning calls this inside optimizer.step(), after 16-mixed AMP has unscaled the
        # gradients: clipping before step() would clip gradients still multiplied by the loss scale.
        if self.hparams.gradient_clip_val:
            self.clip_gradients(optimizer, self.hparams.gradient_clip_val, gradient_clip_algorithm="norm")
