"""The centre θ₀ of the adapter-space prior: the adapter's reproducible initialisation.

In adapter space the posterior is Q = N(θ, σ²) over a LoRA adapter's parameters θ = (A, B, ...)
and the prior P = N(θ₀, σ_p²) must be fixed before the bound set is seen. peft initialises
B₀ = 0 and A₀ (r × fan_in) by Kaiming-uniform on [−1/√fan_in, 1/√fan_in], variance
1/(3 fan_in), so ‖A₀‖² ≈ r/3 and a prior at A₀ = 0 pays ‖A₀‖²/(2σ²) ≈ r/(6σ²) nats per module
for the initial values alone (1.3·10⁴ at r = 8, σ = 0.01), however little training moved A. A centre at the actual A₀ removes that
cost; any data-free θ₀ keeps the certificate valid, so the centre is chosen by this order, first
found wins:

1. ``adapter_init`` given: the adapter saved at initialisation (a PEFT adapter folder);
2. ``<adapter>/adapter_init/``: the same, recorded by training (``tradeoff sweep`` writes it);
3. a seed (given, or recorded in ``<adapter>/adapter_seed.json`` as ``{"seed": s}``): the
   initialisation is rebuilt as training builds it, ``torch.manual_seed(s)``, the base model
   loaded, ``peft.get_peft_model`` with the adapter's own config. This reproduces A₀ exactly
   only when training ran that same sequence with the same library versions; when it does not,
   the rebuilt θ₀ is still data-free (the certificate stays valid) but independent of the real
   A₀, so it costs about twice the zero centre: the saved folder (1 or 2) is preferred;
4. otherwise θ₀ = 0 (B₀ = A₀ = 0), said in the output. An unknown seed is never guessed: a
   guessed, wrong A₀ is worse than 0, and trying seeds until one fits the trained adapter
   would make the prior depend on the data.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pacbound.exceptions import InvalidParameterError

__all__ = [
    "ADAPTER_INIT_DIR",
    "ADAPTER_SEED_FILE",
    "AdapterCentre",
    "adapter_prior_centre",
    "rebuild_adapter_init",
]

ADAPTER_INIT_DIR = "adapter_init"
"""Sub-folder of an adapter folder holding the adapter saved at initialisation."""
ADAPTER_SEED_FILE = "adapter_seed.json"
"""File of an adapter folder recording the seed of its initialisation, ``{"seed": s}``."""

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class AdapterCentre:
    """Where the adapter-space prior is centred.

    Attributes
    ----------
    kind : {"file", "recorded", "seed", "zero", "statistics", "learnt"}
        An initial adapter given, one recorded in the adapter folder, one rebuilt from a seed,
        θ₀ = 0, whatever precomputed statistics were measured against, or a learnt prior (a
        LoRA fine-tune on a part of the data disjoint from the bound set).
    path : str or None
        The initial adapter folder (for ``"seed"``: None until rebuilt).
    seed : int or None
        The seed of a rebuilt initialisation, and where it came from in ``seed_source``.
    """

    kind: str
    path: str | None = None
    seed: int | None = None
    seed_source: str | None = None

    def __str__(self) -> str:
        if self.kind in ("file", "recorded"):
            how = "given" if self.kind == "file" else "recorded by training"
            return f"theta0 = the adapter saved at initialisation ({how}: {self.path})"
        if self.kind == "seed":
            return (
                f"theta0 = peft's initialisation rebuilt from seed {self.seed} "
                f"({self.seed_source}); valid whatever the seed, tight only if it is training's"
            )
        if self.kind == "learnt":
            return f"theta_prior = the learnt prior's adapter ({self.path})"
        if self.kind == "statistics":
            at = "0 (A0 = B0 = 0)" if self.path is None else f"the adapter at {self.path}"
            return f"theta0 as measured in the given statistics: {at}"
        return (
            "theta0 = 0 (A0 = B0 = 0): no initial adapter or seed recorded, so the prior pays "
            "for A's initial values"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "path": self.path,
            "seed": self.seed,
            "seed_source": self.seed_source,
            "text": str(self),
        }


def is_adapter_folder(folder: PathLike) -> bool:
    """Whether ``folder`` is a PEFT adapter folder (holds ``adapter_config.json``)."""
    folder = Path(folder)
    return folder.is_dir() and (folder / "adapter_config.json").is_file()


def adapter_prior_centre(
    adapter: PathLike, *, adapter_init: PathLike | None = None, seed: int | None = None
) -> AdapterCentre:
    """The adapter-space prior centre of ``adapter``, by the order of the module docstring.

    Parameters
    ----------
    adapter : path-like
        The trained PEFT adapter folder.
    adapter_init : path-like, optional
        The adapter saved at initialisation.
    seed : int, optional
        The seed of the initialisation (used when no initial adapter is saved).

    Raises
    ------
    InvalidParameterError
        ``adapter_init`` is not a PEFT adapter folder, its config differs from the adapter's
        (another rank, targets or base), or the recorded seed file is malformed.
    """
    folder = Path(adapter)
    if adapter_init is not None:
        init = Path(adapter_init)
        if not is_adapter_folder(init):
            raise InvalidParameterError(
                f"`adapter_init` must be a PEFT adapter folder (with adapter_config.json); "
                f"got {str(init)!r}."
            )
        check_same_adapter_family(folder, init)
        return AdapterCentre("file", str(init))
    recorded = folder / ADAPTER_INIT_DIR
    if is_adapter_folder(recorded):
        check_same_adapter_family(folder, recorded)
        return AdapterCentre("recorded", str(recorded))
    if seed is not None:
        return AdapterCentre("seed", None, int(seed), "given")
    seed_file = folder / ADAPTER_SEED_FILE
    if seed_file.is_file():
        try:
            value = json.loads(seed_file.read_text())["seed"]
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidParameterError(
                f'`{seed_file}` must hold {{"seed": <integer>}}; got an unreadable file ({exc}).'
            ) from None
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidParameterError(
                f"`{seed_file}` must hold a seed that is an integer >= 0; got {value!r}."
            )
        return AdapterCentre("seed", None, value, str(seed_file))
    return AdapterCentre("zero")


_FAMILY_KEYS = ("peft_type", "r", "lora_alpha", "target_modules", "use_rslora", "use_dora")


def check_same_adapter_family(adapter: Path, init: Path, role: str = "adapter_init") -> None:
    """An initial (or prior) adapter must be of the trained adapter's own family (same rank,
    targets...); ``role`` names the argument in the message."""
    a = json.loads((adapter / "adapter_config.json").read_text())
    b = json.loads((init / "adapter_config.json").read_text())
    for key in _FAMILY_KEYS:
        va, vb = a.get(key), b.get(key)
        if isinstance(va, list) and isinstance(vb, list):
            va, vb = sorted(va), sorted(vb)
        if va != vb:
            raise InvalidParameterError(
                f"`{role}` must have the adapter's config: `{key}` is {vb!r} in "
                f"{init} but {va!r} in {adapter}."
            )


def rebuild_adapter_init(base: PathLike, adapter: PathLike, seed: int, out: PathLike) -> Path:
    """Rebuild the adapter's initialisation from ``seed`` into ``out`` (a PEFT adapter folder).

    The sequence is the one training runs: ``torch.manual_seed(seed)``, the base model loaded
    (float32), ``peft.get_peft_model`` with the adapter's saved config (so peft draws A₀ by
    its own initialiser, Kaiming-uniform for plain LoRA, with B₀ = 0).
    """
    import torch
    from peft import PeftConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    config = PeftConfig.from_pretrained(str(adapter))
    config.inference_mode = False
    torch.manual_seed(int(seed))
    model = AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32)
    peft_model = get_peft_model(model, config)
    out = Path(out)
    peft_model.save_pretrained(str(out))
    return out
