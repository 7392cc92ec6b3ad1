"""PEFT LoRA adapters: configuration and key planning (which factors make which module).

For a LoRA module with factors A (r x in) and B (out x r) and scaling s, the weight change is
ΔW = s·B·A (transposed for ``fan_in_fan_out`` layers such as GPT-2's ``Conv1D``, and for
embeddings, where ΔW = s·(B·A)ᵀ with A = ``lora_embedding_A`` (r x vocab) and
B = ``lora_embedding_B`` (dim x r)). The scaling follows peft (``tuners/lora/layer.py``):
s = α/r, or α/√r with ``use_rslora``; per-module r and α come from ``rank_pattern`` /
``alpha_pattern``, where a key matches a module name when ``re.match(rf"(.*\\.)?({key})$",
name)`` succeeds (peft's ``get_pattern_key``); r is read from ``lora_A.shape[0]`` and must
agree with the config. ``lora_bias`` adds Δb = s·``lora_B.bias``.

The arithmetic on the factors (the factored norm, the LoRA and DoRA merges row by row) is in
:mod:`measurement._lora_transforms`.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from measurement._checkpoint import Checkpoint, TensorInfo, open_checkpoint
from measurement._pairing import NameResolver
from measurement.exceptions import AdapterConfigError

if TYPE_CHECKING:
    pass

__all__ = [
    "AdapterPlan",
    "LoraConfigInfo",
    "LoraModule",
    "plan_adapter",
    "read_adapter_config",
]

_PREFIX = "base_model.model."
_FACTOR_SUFFIXES = {
    ".lora_A.weight": "A",
    ".lora_B.weight": "B",
    ".lora_B.bias": "bias",
    ".lora_embedding_A": "A",
    ".lora_embedding_B": "B",
    ".lora_magnitude_vector": "magnitude",
    ".lora_magnitude_vector.weight": "magnitude",
    ".base_layer.weight": "base_layer",
}
_BASE_MODIFYING_INITS = ("pissa", "olora", "corda", "loftq")


def pattern_key(patterns: list[str], module: str) -> str | None:
    """The first pattern that matches ``module`` by peft's rule, or None."""
    for key in patterns:
        if re.match(rf"(.*\.)?({key})$", module):
            return key
    return None


@dataclass(frozen=True)
class LoraConfigInfo:
    """The fields of ``adapter_config.json`` that determine ΔW.

    Attributes
    ----------
    path : pathlib.Path
        The config file.
    r : int
        Default rank.
    lora_alpha : float
        Default α.
    use_rslora : bool
        s = α/√r instead of α/r.
    rank_pattern, alpha_pattern : dict
        Per-module overrides (peft's regex rule).
    fan_in_fan_out : bool
        Base weights stored as (in, out).
    use_dora : bool
        DoRA magnitude rescaling.
    lora_bias : bool
        ``lora_B`` carries a bias.
    raw : dict
        The whole file.
    """

    path: Path
    r: int
    lora_alpha: float
    use_rslora: bool = False
    rank_pattern: dict[str, int] = field(default_factory=dict)
    alpha_pattern: dict[str, float] = field(default_factory=dict)
    fan_in_fan_out: bool = False
    use_dora: bool = False
    lora_bias: bool = False
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    def rank_alpha(self, module: str) -> tuple[int, float]:
        """Configured (r, α) of ``module`` after rank_pattern / alpha_pattern."""
        rk = pattern_key(list(self.rank_pattern), module)
        ak = pattern_key(list(self.alpha_pattern), module)
        r = self.rank_pattern[rk] if rk is not None else self.rank_pattern.get(module, self.r)
        a = (
            self.alpha_pattern[ak]
            if ak is not None
            else self.alpha_pattern.get(module, self.lora_alpha)
        )
        return int(r), float(a)

    def scaling(self, r: int, alpha: float) -> float:
        """s = α/r, or α/√r with rsLoRA."""
        return alpha / math.sqrt(r) if self.use_rslora else alpha / r

    def summary(self) -> dict[str, Any]:
        """JSON-safe description (for the statistics metadata)."""
        return {
            "r": self.r,
            "lora_alpha": self.lora_alpha,
            "use_rslora": self.use_rslora,
            "rank_pattern": dict(self.rank_pattern),
            "alpha_pattern": dict(self.alpha_pattern),
            "fan_in_fan_out": self.fan_in_fan_out,
            "use_dora": self.use_dora,
            "lora_bias": self.lora_bias,
            "modules_to_save": self.raw.get("modules_to_save"),
            "target_modules": self.raw.get("target_modules"),
            "base_model_name_or_path": self.raw.get("base_model_name_or_path"),
        }


def read_adapter_config(folder: str | Path) -> LoraConfigInfo:
    """Read and check ``adapter_config.json`` of a PEFT LoRA adapter folder.

    Raises
    ------
    AdapterConfigError
        Missing file, invalid JSON, a peft_type other than LORA, a missing or invalid ``r``,
        or an unsupported feature (base-modifying initialisations such as PiSSA,
        ``target_parameters``, ``layer_replication``, trainable tokens).
    """
    path = Path(folder) / "adapter_config.json"
    if not path.is_file():
        raise AdapterConfigError(f"Adapter folder `{folder}` has no adapter_config.json.")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AdapterConfigError(f"Adapter config `{path}` is not valid JSON ({exc}).") from None
    if not isinstance(raw, dict):
        raise AdapterConfigError(f"Adapter config `{path}` must be a JSON object.")
    peft_type = raw.get("peft_type", "LORA")
    if str(peft_type).upper() != "LORA":
        raise AdapterConfigError(
            f"`peft_type` in `{path}` must be 'LORA' (only LoRA adapters and their variants "
            f"are supported); got {peft_type!r}."
        )
    r = raw.get("r")
    if r is None:
        raise AdapterConfigError(f"`r` in `{path}` must be given (the LoRA rank); it is missing.")
    if isinstance(r, bool) or not isinstance(r, int) or r < 1:
        raise AdapterConfigError(f"`r` in `{path}` must be an integer >= 1; got {r!r}.")
    alpha = raw.get("lora_alpha", 8)
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not math.isfinite(alpha):
        raise AdapterConfigError(
            f"`lora_alpha` in `{path}` must be a finite number; got {alpha!r}."
        )
    init = raw.get("init_lora_weights", True)
    if isinstance(init, str) and init.lower().startswith(_BASE_MODIFYING_INITS):
        raise AdapterConfigError(
            f"`init_lora_weights` in `{path}` must not modify the base weights; got {init!r}. "
            "Save the adapter with peft's `path_initial_model_for_weight_conversion` to turn it "
            "into a plain LoRA relative to the original base."
        )
    for key in ("target_parameters", "layer_replication", "trainable_token_indices"):
        if raw.get(key):
            raise AdapterConfigError(
                f"`{key}` in `{path}` must be empty (not supported yet); got {raw[key]!r}."
            )
    for key in ("rank_pattern", "alpha_pattern"):
        if raw.get(key) is not None and not isinstance(raw.get(key), dict):
            raise AdapterConfigError(f"`{key}` in `{path}` must be an object; got {raw[key]!r}.")
    return LoraConfigInfo(
        path=path,
        r=r,
        lora_alpha=float(alpha),
        use_rslora=bool(raw.get("use_rslora", False)),
        rank_pattern=dict(raw.get("rank_pattern") or {}),
        alpha_pattern=dict(raw.get("alpha_pattern") or {}),
        fan_in_fan_out=bool(raw.get("fan_in_fan_out", False)),
        use_dora=bool(raw.get("use_dora", False)),
        lora_bias=bool(raw.get("lora_bias", False)),
        raw=raw,
    )


@dataclass(frozen=True)
class LoraModule:
    """One adapted module: its factors, scaling and the base tensor it changes.

    Attributes
    ----------
    module : str
        Module path in the model (``model.layers.0.self_attn.q_proj``).
    base_name : str
        Name of the changed tensor in the base checkpoint.
    base_how : str
        How it was resolved (exact, canonical, tied).
    layer_type : {"linear", "embedding"}
    A, B : TensorInfo
        The factors in the adapter file.
    bias, magnitude, base_layer : TensorInfo or None
        ``lora_B.bias``, DoRA's magnitude, and a saved copy of the base layer (embeddings).
    r : int
    alpha, scaling : float
    fan_in_fan_out : bool
        ΔW stored transposed (``Conv1D``; always True for embeddings).
    """

    module: str
    base_name: str
    base_how: str
    layer_type: str
    A: TensorInfo
    B: TensorInfo
    bias: TensorInfo | None
    magnitude: TensorInfo | None
    base_layer: TensorInfo | None
    r: int
    alpha: float
    scaling: float
    fan_in_fan_out: bool

    @property
    def dora(self) -> bool:
        return self.magnitude is not None


@dataclass(frozen=True)
class AdapterPlan:
    """A planned adapter on top of a base checkpoint.

    Attributes
    ----------
    folder : pathlib.Path
    config : LoraConfigInfo
    checkpoint : Checkpoint
        The adapter weights file, planned from its header.
    modules : list of LoraModule
    full : list of tuple
        ``(adapter tensor, base name or None, how)`` for full tensors the adapter replaces
        (``modules_to_save``, ``bias="all"``).
    unresolved : list of str
        Adapter tensors whose base tensor was not found (only with ``allow_unpaired``).
    """

    folder: Path
    config: LoraConfigInfo
    checkpoint: Checkpoint
    modules: list[LoraModule]
    full: list[tuple[TensorInfo, str | None, str]]
    unresolved: list[str] = field(default_factory=list)


def _adapter_file(folder: Path) -> Path:
    for name in ("adapter_model.safetensors", "adapter_model.bin"):
        if (folder / name).is_file():
            return folder / name
    raise AdapterConfigError(
        f"Adapter folder `{folder}` has no adapter_model.safetensors or adapter_model.bin."
    )


def _split_key(key: str) -> tuple[str, str | None]:
    name = key[len(_PREFIX) :] if key.startswith(_PREFIX) else key
    for suffix, role in _FACTOR_SUFFIXES.items():
        if name.endswith(suffix):
            return name[: -len(suffix)], role
    return name, None


def plan_adapter(
    folder: str | Path, base: Checkpoint, *, allow_unpaired: bool = False
) -> AdapterPlan:
    """Group the adapter's tensors by module and find the base tensor each one changes.

    Raises
    ------
    AdapterConfigError
        Invalid config, missing factors, factor shapes that disagree with each other, with
        the config's rank or with the base tensor, conv LoRA, trainable tokens.
    UnpairedTensorError
        Adapter tensors whose base tensor does not exist (unless ``allow_unpaired``).
    """
    from measurement._pairing import unpaired_error

    folder = Path(folder)
    config = read_adapter_config(folder)
    ckpt = open_checkpoint(_adapter_file(folder), role="adapter")
    groups: dict[str, dict[str, TensorInfo]] = {}
    full: list[tuple[TensorInfo, str | None, str]] = []
    resolver = NameResolver(base.tensors)
    unresolved: list[str] = []
    for key, info in ckpt.tensors.items():
        if "trainable_tokens_delta" in key:
            raise AdapterConfigError(
                f"Adapter `{folder}` holds trainable tokens (`{key}`); not supported yet."
            )
        module, role = _split_key(key)
        if role is None:
            name = module.replace(".modules_to_save.default.", ".")
            hit, how = resolver.resolve(name)
            if hit is None:
                unresolved.append(key)
            full.append((info, hit, how))
            continue
        groups.setdefault(module, {})[role] = info
    modules = []
    for module, parts in groups.items():
        planned = _plan_module(folder, config, module, parts, base, resolver)
        if planned is None:
            unresolved.append(module)
        else:
            modules.append(planned)
    if unresolved and not allow_unpaired:
        raise unpaired_error(base.path, folder, [], unresolved, [], ft_label="adapter")
    return AdapterPlan(
        folder, config, ckpt, modules, [f for f in full if f[1] is not None], unresolved
    )


def _plan_module(
    folder: Path,
    config: LoraConfigInfo,
    module: str,
    parts: dict[str, TensorInfo],
    base: Checkpoint,
    resolver: NameResolver,
) -> LoraModule | None:
    where = f"adapter `{folder}`, module `{module}`"
    if "A" not in parts or "B" not in parts:
        missing = "lora_A" if "A" not in parts else "lora_B"
        raise AdapterConfigError(f"In {where}: {missing} is missing.")
    A, B = parts["A"], parts["B"]
    if len(A.shape) != 2 or len(B.shape) != 2:
        raise AdapterConfigError(
            f"In {where}: LoRA factors must be 2-D (conv LoRA is not supported); got lora_A "
            f"{list(A.shape)} and lora_B {list(B.shape)}."
        )
    embedding = A.name.endswith("lora_embedding_A")
    r = A.shape[0]
    if B.shape[1] != r:
        raise AdapterConfigError(
            f"In {where}: lora_B must have r = {r} columns (lora_A has {r} rows); got lora_B "
            f"{list(B.shape)}."
        )
    r_conf, alpha = config.rank_alpha(module)
    if r_conf != r:
        raise AdapterConfigError(
            f"In {where}: `r` must match the factors; adapter_config.json gives r = {r_conf} "
            f"(after rank_pattern) but lora_A has {r} rows."
        )
    base_name, how = resolver.resolve(module + ".weight")
    if base_name is None:
        return None
    w = base.tensors[base_name]
    fifo = embedding or config.fan_in_fan_out
    delta_shape = (A.shape[1], B.shape[0]) if fifo else (B.shape[0], A.shape[1])
    base_layer = parts.get("base_layer")
    ref_shape = base_layer.shape if base_layer is not None else w.shape
    if tuple(ref_shape) != delta_shape:
        raise AdapterConfigError(
            f"In {where}: ΔW = {'(BA)ᵀ' if fifo else 'BA'} has shape {list(delta_shape)} but the "
            f"{'saved base layer' if base_layer is not None else f'base tensor `{base_name}`'} "
            f"has shape {list(ref_shape)}" + (" (check fan_in_fan_out)." if not embedding else ".")
        )
    magnitude = parts.get("magnitude")
    if magnitude is not None and (embedding or magnitude.shape != (B.shape[0],)):
        raise AdapterConfigError(
            f"In {where}: DoRA is supported on linear layers with a magnitude of shape "
            f"[{B.shape[0]}]; got {list(magnitude.shape)}"
            + (" on an embedding." if embedding else ".")
        )
    return LoraModule(
        module=module,
        base_name=base_name,
        base_how=how,
        layer_type="embedding" if embedding else "linear",
        A=A,
        B=B,
        bias=parts.get("bias"),
        magnitude=magnitude,
        base_layer=base_layer,
        r=r,
        alpha=alpha,
        scaling=config.scaling(r, alpha),
        fan_in_fan_out=fifo,
    )
