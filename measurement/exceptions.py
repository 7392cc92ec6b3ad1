"""Errors raised by :mod:`measurement` that a user can cause.

All subclass :class:`pacbound.exceptions.TradeoffError` (through ``InputFileError`` for files
and ``InvalidParameterError`` for arguments), so the ``tradeoff`` command prints them as one
line on stderr and exits with status 2. Messages name the file and the tensor.
"""

from __future__ import annotations

from pacbound.exceptions import InputFileError, InvalidParameterError

__all__ = [
    "AdapterConfigError",
    "CheckpointError",
    "DeviceUnavailableError",
    "NonFiniteWeightError",
    "QuantizedCheckpointError",
    "UnpairedTensorError",
]


class CheckpointError(InputFileError):
    """A checkpoint file or folder is missing, truncated, corrupt or not a weights file."""


class QuantizedCheckpointError(CheckpointError):
    """A checkpoint holds quantised weights (GPTQ/AWQ/bitsandbytes/FP8...); refused."""


class UnpairedTensorError(InputFileError):
    """Tensors of the base and the fine-tune do not pair by name or by shape.

    Attributes
    ----------
    base_only : list of str
        Tensors found only in the base checkpoint.
    finetuned_only : list of str
        Tensors found only in the fine-tuned checkpoint.
    shape_mismatch : list of tuple
        ``(name, base_shape, finetuned_shape)`` for tensors present on both sides.
    """

    def __init__(
        self,
        message: str,
        *,
        base_only: list[str] | None = None,
        finetuned_only: list[str] | None = None,
        shape_mismatch: list[tuple[str, tuple[int, ...], tuple[int, ...]]] | None = None,
    ):
        super().__init__(message)
        self.base_only = list(base_only or [])
        self.finetuned_only = list(finetuned_only or [])
        self.shape_mismatch = list(shape_mismatch or [])


class NonFiniteWeightError(InputFileError):
    """A weight tensor holds NaN or infinite values."""


class AdapterConfigError(InputFileError):
    """A PEFT adapter folder or its ``adapter_config.json`` is invalid or unsupported."""


class DeviceUnavailableError(InvalidParameterError):
    """The requested compute device (e.g. ``cuda``) is not available on this machine."""


# --- datasets, losses and certificates (measurement._datasets, _losses, _certify) ---------

__all__ += ["DatasetError"]


class DatasetError(InputFileError):
    """A dataset is unreadable or malformed: bad JSON, a missing column, an empty completion.

    The message names the file and, where it applies, the row and the field.
    """
