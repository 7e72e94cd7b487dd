"""The settings of one training, as one typed object each.

`FitSettings` is what a student passes to `compile` and `fit` (epochs, batch size,
optimizer, learning rate); `FineTune` is the optional second stage of transfer
(`--fine-tune`): which pretrained layers open, and its own `FitSettings`. Scripts make
them once from their config (`cli.TrainingFlags.fit`, `.fine_tuning`)
and hand them down whole, so no function takes four loose training parameters.
"""

import dataclasses

# Keras's dtype policies a run may compute in (--precision); auto: bf16 where the hardware
# has it (common.runs.device.configure_device).
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16", "auto")

# Keras's own default learning rate of each optimizer the scripts offer.
DEFAULT_LEARNING_RATES = {"adam": 0.001, "rmsprop": 0.001, "sgd": 0.01}


@dataclasses.dataclass(frozen=True)
class FitSettings:
    """How one model trains: `compile(optimizer=...)` and `fit(batch_size=..., epochs=...)`."""

    epochs: int
    batch_size: int
    optimizer: str = "adam"  # a key of DEFAULT_LEARNING_RATES
    learning_rate: float | None = None  # None: the optimizer's own default
    # Keep each epoch's loss and accuracy of every trial (--log-dir). `fit` always returns
    # them in its History; the fast engine measures them only when asked, as they cost
    # a prediction per trial and epoch.
    history: bool = False

    @property
    def rate(self) -> float:
        """The learning rate in force (the optimizer's default when none was given)."""
        return (self.learning_rate if self.learning_rate is not None
                else DEFAULT_LEARNING_RATES[self.optimizer])

    def make_optimizer(self):
        """A fresh Keras optimizer (each `compile` needs its own: it keeps per-weight state)."""
        import keras

        optimizers = {"adam": keras.optimizers.Adam, "rmsprop": keras.optimizers.RMSprop,
                      "sgd": keras.optimizers.SGD}
        return optimizers[self.optimizer](learning_rate=self.rate)


@dataclasses.dataclass(frozen=True)
class FineTune:
    """The second stage of transfer: after the new layers have trained, the pretrained
    part's last `count` layers with weights (or those whose name starts with `prefix`)
    open too, and the whole model trains on with `fit` (usually a lower learning rate)."""

    count: int | None  # the last N layers with weights ...
    prefix: str | None  # ... or the layers named prefix... ("block5" of VGG16)
    fit: FitSettings

    @property
    def which(self) -> str:
        """How the summary names the opened layers."""
        return f"last {self.count} layer(s)" if self.count else f"{self.prefix}* layers"


def parse_fine_tune(spec: str) -> tuple[int | None, str | None]:
    """`--fine-tune` as (count, prefix): "3" -> (3, None); "block5" -> (None, "block5");
    "0" -> (None, None), no second stage."""
    if spec.isdigit():
        return (int(spec) or None), None
    return None, spec
