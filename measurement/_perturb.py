"""Posterior samples in place: seeded Gaussian noise on chosen parameters, exact restoration.

A sample of Q = N(w, diag(σ_l²)) is the model with each chosen tensor l moved to
w_l + σ_l ε_l, ε_l ~ N(0, I). The noise is generated on the fly, tensor by tensor and in
chunks, by a generator seeded with (seed, sample, tensor index), so sample j is the same
whatever ran before it and no noise tensor the size of the model ever exists. The addition is
done in float32 and rounded once to the parameter's dtype.

Restoring never subtracts the noise (in bf16, w + ε − ε ≠ w) and never deep-copies the model:
each tensor is copied back from its source, either the safetensors file it was loaded from
(memory-mapped, through :class:`measurement._checkpoint_reader.CheckpointReader`, used when
the file holds exactly the loaded values) or a one-time copy on the CPU of the tensors that
are perturbed (the rest of the model is never copied).

Which parameters: ``space="weight"`` perturbs every parameter of the model (tied tensors
once), matching the weight-space KL; ``space="adapter"`` perturbs only a PEFT adapter's own
parameters (``lora_A``, ``lora_B``, LoRA biases and DoRA magnitudes, ``modules_to_save`` and
trainable-token tensors), so the perturbed model stays base + low rank.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from measurement._generate import seed_for
from pacbound.exceptions import InvalidParameterError
from pacbound.support import check_choice, check_in_interval

__all__ = ["PosteriorNoise", "WeightRestorer", "by_parameter_name", "select_parameters"]

_CHUNK = 1 << 22  # elements of noise alive at once (16 MiB in float32)
_ADAPTER_PARTS = (".lora_", ".modules_to_save.", "trainable_tokens")


def select_parameters(model: Any, space: str) -> list[tuple[str, torch.nn.Parameter]]:
    """The parameters a posterior of the given family perturbs, sorted by name.

    Parameters
    ----------
    model
        A causal LM; for ``space="adapter"`` a PEFT model with its adapter unmerged.
    space : {"weight", "adapter"}
    """
    check_choice(space, "space", ("weight", "adapter"))
    named = list(model.named_parameters())  # tied tensors appear once
    if space == "adapter":
        named = [(n, p) for n, p in named if any(part in n for part in _ADAPTER_PARTS)]
        if not named:
            raise InvalidParameterError(
                "`space` must be 'weight' for a model without a PEFT adapter (adapter space "
                "perturbs the adapter's own parameters); got 'adapter'."
            )
    return sorted(named, key=lambda item: item[0])


@dataclass(frozen=True)
class PosteriorNoise:
    """Seeded Gaussian noise for a list of parameters.

    Attributes
    ----------
    names : tuple of str
        Parameter names, in tensor-index order.
    stds : tuple of float
        Standard deviation of the noise of each tensor (σ, or σ · RMS_l).
    seed : int
    """

    names: tuple[str, ...]
    stds: tuple[float, ...]
    seed: int = 0

    @classmethod
    def isotropic(cls, names: list[str], sigma: float, seed: int = 0) -> PosteriorNoise:
        sigma = float(check_in_interval(sigma, "sigma", 0.0, closed="neither", allow_nan=False))
        return cls(tuple(names), (sigma,) * len(names), int(seed))

    @classmethod
    def per_tensor(
        cls, names: list[str], sigma: float, scales: Mapping[str, float], seed: int = 0
    ) -> PosteriorNoise:
        """σ_l = σ · s_l, with the scale s_l of each parameter looked up by name.

        ``scales`` comes from :func:`measurement.per_tensor_scales` (matched to parameter names
        by :func:`by_parameter_name`): the same table :func:`measurement.gaussian_kl` charges.
        """
        sigma = float(check_in_interval(sigma, "sigma", 0.0, closed="neither", allow_nan=False))
        missing = [n for n in names if n not in scales]
        if missing:
            raise InvalidParameterError(
                f"`per_tensor_scale` needs the scale of every perturbed tensor; "
                f"{len(missing)} have none (e.g. `{missing[0]}`)."
            )
        return cls(tuple(names), tuple(sigma * float(scales[n]) for n in names), int(seed))

    def apply_(self, params: Mapping[str, torch.nn.Parameter], sample: int) -> None:
        """Add the noise of posterior sample ``sample`` to ``params`` in place."""
        with torch.no_grad():
            for index, (name, std) in enumerate(zip(self.names, self.stds, strict=True)):
                if std == 0.0:
                    continue
                param = params[name]
                gen = torch.Generator(device=param.device)
                gen.manual_seed(seed_for(self.seed, sample, index))
                for flat in _flat_chunks(param):
                    noise = torch.randn(
                        flat.numel(), generator=gen, device=param.device, dtype=torch.float32
                    )
                    flat.copy_((flat.float() + noise.mul_(std).view_as(flat)).to(param.dtype))


class WeightRestorer:
    """Put perturbed parameters back exactly, from their files or from a one-time copy.

    Parameters
    ----------
    params : mapping of str to Parameter
        The parameters that will be perturbed.
    source : path, optional
        A checkpoint (model folder, ``.safetensors`` file, or PEFT adapter folder) the values
        were loaded from. Each tensor whose file values equal the loaded ones exactly is
        restored from the file; the others (or all, without ``source``) from a CPU copy.
    adapter_name : str
        The PEFT adapter name stripped from parameter names to find adapter-file keys.
    """

    def __init__(
        self,
        params: Mapping[str, torch.nn.Parameter],
        *,
        source: str | Path | None = None,
        adapter_name: str = "default",
    ):
        self._params = dict(params)
        self._files: dict[str, Any] = {}
        self._copies: dict[str, torch.Tensor] = {}
        self._reader = None
        if source is not None:
            self._plan_files(Path(source), adapter_name)
        for name, param in self._params.items():
            if name not in self._files:
                self._copies[name] = param.detach().to("cpu", copy=True)

    @property
    def source(self) -> str:
        """``"files"``, ``"copy"`` or ``"files+copy"``."""
        if self._files and self._copies:
            return "files+copy"
        return "files" if self._files else "copy"

    def restore(self) -> None:
        """Copy every parameter back from its source (exact, whatever the dtype)."""
        with torch.no_grad():
            for name, info in self._files.items():
                param, start = self._params[name], 0
                for flat in _flat_chunks(param):
                    stop = start + flat.numel()
                    flat.copy_(self._reader.view(info, start, stop))
                    start = stop
            for name, saved in self._copies.items():
                self._params[name].copy_(saved)

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def _plan_files(self, source: Path, adapter_name: str) -> None:
        from measurement._checkpoint import open_checkpoint
        from measurement._checkpoint_reader import CheckpointReader

        path = source
        if source.is_dir() and (source / "adapter_model.safetensors").is_file():
            path = source / "adapter_model.safetensors"
        ckpt = open_checkpoint(path, role="source")
        if ckpt.format != "safetensors":
            return
        self._reader = CheckpointReader(ckpt)
        keys = ckpt.tensors
        for name, param in self._params.items():
            info = keys.get(_file_key(name, adapter_name))
            if info is None or tuple(info.shape) != tuple(param.shape) or not param.is_contiguous():
                continue
            stored = self._reader.view(info).to(param.dtype).reshape(param.shape)
            if torch.equal(stored.to(param.device), param.detach()):
                self._files[name] = info


def by_parameter_name(values: Mapping[str, float], names: list[str]) -> dict[str, float]:
    """Look up a per-tensor value (keyed by statistics-table name) for each parameter name.

    Parameter names are matched to table names directly, or after stripping PEFT prefixes.
    """
    out = {}
    for name in names:
        for key in (name, _file_key(name, "default"), _base_key(name)):
            if key in values:
                out[name] = float(values[key])
                break
    return out


def _file_key(name: str, adapter_name: str) -> str:
    key = name.replace(f".{adapter_name}.", ".").replace(".modules_to_save.", ".")
    return re.sub(rf"\.{re.escape(adapter_name)}$", "", key)


def _base_key(name: str) -> str:
    return _file_key(name, "default").removeprefix("base_model.model.")


def _flat_chunks(param: torch.Tensor) -> Iterator[torch.Tensor]:
    """1-D views of ``param``'s data, at most ``_CHUNK`` elements each (in storage order)."""
    data = param.data
    if not data.is_contiguous():
        yield data  # rare: whole tensor at once
        return
    flat = data.view(-1)
    for start in range(0, flat.numel(), _CHUNK):
        yield flat[start : start + _CHUNK]
