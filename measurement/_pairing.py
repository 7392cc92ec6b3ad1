"""Pair the tensors of a base and a fine-tuned checkpoint by name, never by file.

Rules, in order:

1. Exact names pair (a base saved in shards and a fine-tune saved in one file pair fine).
2. Names left over on both sides pair by their *canonical* form: wrapper prefixes that
   differ between saving code paths (``module.``, ``_orig_mod.``, ``base_model.model.``,
   ``model.``, ``transformer.``, ``language_model.``) are stripped.
3. Tied weights are counted once. A head (``lm_head.weight``) present on one side only pairs
   with the other side's input embedding (the model was untied, or saved tied); when both
   configs say ``tie_word_embeddings`` and both files still carry the head, it is dropped.
4. Vocabulary resize: an embedding or head whose row count grew pairs its common rows; the
   new rows are reported apart (kind ``new_rows``, prior centre 0).
5. Non-floating tensors (integer or bool buffers) are skipped, listed and counted; a name that
   is floating on one side and integer/bool on the other is reported as such (not as a tensor
   "only in" the floating side).

Anything left unpaired, or paired with another shape, is an error listing both sides, unless
``allow_unpaired``; then a warning gives the share of floating parameters compared
(:class:`Coverage`). When no floating tensor pairs at all the comparison is refused: a KL over
zero tensors is 0 and would certify nothing.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field

from measurement._checkpoint import Checkpoint, TensorInfo
from measurement.exceptions import UnpairedTensorError

__all__ = [
    "MODULE_KINDS",
    "Coverage",
    "NameResolver",
    "PairingPlan",
    "TensorPair",
    "canonical_name",
    "classify_module",
    "layer_index",
    "pair_checkpoints",
]

MODULE_KINDS = ("attention", "mlp", "embedding", "lm_head", "norm", "other")

_WRAPPER_PREFIXES = (
    "module.",
    "_orig_mod.",
    "base_model.model.",
    "language_model.",
    "model.",
    "transformer.",
)
_EMBEDDING_SUFFIXES = (
    "embed_tokens.weight",
    "wte.weight",
    "word_embeddings.weight",
    "embed_in.weight",
    "tok_embeddings.weight",
    "shared.weight",
)
_HEAD_NAMES = ("lm_head.weight", "embed_out.weight", "output.weight")
_ATTENTION = ("attn", "attention", "self_attn", "cross_attn", "q_proj", "k_proj", "v_proj",
              "o_proj", "qkv_proj", "query", "key", "value", "c_attn", "c_proj_attn", "wq", "wk",
              "wv", "wo", "query_key_value")  # fmt: skip
_MLP = ("mlp", "ffn", "feed_forward", "gate_proj", "up_proj", "down_proj", "gate_up_proj",
        "c_fc", "fc1", "fc2", "experts", "dense_h_to_4h", "dense_4h_to_h", "w1", "w2", "w3",
        "block_sparse_moe", "shared_expert")  # fmt: skip


def canonical_name(name: str) -> str:
    """``name`` with the wrapper prefixes that differ between saving code paths stripped."""
    changed = True
    while changed:
        changed = False
        for prefix in _WRAPPER_PREFIXES:
            if name.startswith(prefix) and len(name) > len(prefix):
                name = name[len(prefix) :]
                changed = True
    return name


def layer_index(name: str) -> int | None:
    """The transformer block a tensor belongs to (first integer component), else None."""
    for part in name.split("."):
        if part.isdigit():
            return int(part)
    return None


def _is_head(name: str) -> bool:
    canon = canonical_name(name)
    return canon in _HEAD_NAMES or "lm_head" in canon.split(".")


def _is_embedding(name: str) -> bool:
    return canonical_name(name).endswith(_EMBEDDING_SUFFIXES)


def classify_module(name: str) -> str:
    """Module kind of a tensor: attention, mlp, embedding, lm_head, norm or other."""
    if _is_head(name):
        return "lm_head"
    parts = [p.lower() for p in name.split(".")]
    if any("embed" in p or p in ("wte", "wpe", "shared") for p in parts):
        return "embedding"
    if any("norm" in p or re.fullmatch(r"ln(_\w+|f|\d*)", p) for p in parts):
        return "norm"
    if any(p in _ATTENTION or "attn" in p or "attention" in p for p in parts):
        return "attention"
    if any(p in _MLP or "mlp" in p for p in parts):
        return "mlp"
    return "other"


class NameResolver:
    """Find the tensor of a checkpoint that a name from another checkpoint refers to.

    Tries the exact name, then the canonical form (wrapper prefixes stripped), then, for a
    head, the checkpoint's input embedding (tied weights).
    """

    def __init__(self, names: Iterable[str]):
        self.names = list(names)
        self._exact = set(self.names)
        by_canon: dict[str, list[str]] = {}
        for n in self.names:
            by_canon.setdefault(canonical_name(n), []).append(n)
        self._canon = {c: ns[0] for c, ns in by_canon.items() if len(ns) == 1}
        self.embedding = next((n for n in self.names if _is_embedding(n)), None)

    def resolve(self, name: str, *, tied: bool = True) -> tuple[str | None, str]:
        """Return ``(matching name or None, how)`` with ``how`` in exact/canonical/tied."""
        if name in self._exact:
            return name, "exact"
        hit = self._canon.get(canonical_name(name))
        if hit is not None:
            return hit, "canonical"
        if tied and _is_head(name) and self.embedding is not None:
            if not any(_is_head(n) for n in self.names):
                return self.embedding, "tied"
        return None, ""


@dataclass(frozen=True)
class TensorPair:
    """One unit of comparison: an element range of a fine-tuned tensor against the base.

    Attributes
    ----------
    name : str
        Row name in the statistics table (the fine-tune's tensor name).
    kind : {"full", "new_rows"}
        ``new_rows``: rows added by a vocabulary resize, compared with a prior centre of 0.
    finetuned : TensorInfo
        The fine-tuned tensor.
    base : TensorInfo or None
        The base tensor (``None`` for new rows).
    start, stop : int
        Element range of the fine-tuned tensor (flattened) covered by this pair; the base
        range is ``[start, stop)`` too for ``full`` pairs.
    note : str
        How the pair was made when not by exact name (canonical, tied, resized).
    """

    name: str
    kind: str
    finetuned: TensorInfo
    base: TensorInfo | None
    start: int
    stop: int
    note: str = ""

    @property
    def numel(self) -> int:
        """Elements compared."""
        return self.stop - self.start


@dataclass(frozen=True)
class Coverage:
    """How much of the two checkpoints a pairing compares.

    Attributes
    ----------
    compared : int
        Fine-tuned elements in the pairs (common and new rows).
    total : int
        ``compared`` plus the elements of every floating tensor left out: only in one side,
        paired with another shape, or floating on one side and integer/bool on the other.
    unpaired_tensors : int
        Floating tensors only on one side or with different shapes.
    skipped_tensors : int
        Integer or bool tensors (per side), which are buffers, not weights.
    skipped_numel : int
        Their elements.
    """

    compared: int
    total: int
    unpaired_tensors: int = 0
    skipped_tensors: int = 0
    skipped_numel: int = 0

    @property
    def share(self) -> float:
        """``compared / total`` (1.0 when there is nothing at all)."""
        return self.compared / self.total if self.total else 1.0

    def __str__(self) -> str:
        text = (
            f"compared {self.compared:,} of {self.total:,} floating parameters "
            f"({100 * self.share:.2f}%)"
        )
        if self.unpaired_tensors:
            text += f"; {self.unpaired_tensors} tensors did not pair"
        if self.skipped_tensors:
            text += (
                f"; {self.skipped_tensors} integer/bool tensors skipped "
                f"({self.skipped_numel:,} elements; buffers, not weights)"
            )
        return text


@dataclass(frozen=True)
class PairingPlan:
    """Result of pairing: the pairs, and everything that did not pair.

    Attributes
    ----------
    pairs : list of TensorPair
        In the fine-tune's file order, so that one side is read sequentially.
    base_only, finetuned_only : list of str
        Floating tensors with no partner (only non-empty with ``allow_unpaired``).
    shape_mismatch : list of tuple
        ``(name, base_shape, finetuned_shape)`` (only non-empty with ``allow_unpaired``).
    skipped : list of str
        Non-floating tensors (integer or boolean buffers), not weights, as ``"side:name"``.
    notes : list of str
        Human-readable remarks: tied weights, canonical matches, resized vocabularies.
    non_float : list of tuple
        ``(name, side, dtype)`` for names floating on one side and integer/bool on ``side``.
    coverage : Coverage or None
        Elements compared against elements left out.
    """

    pairs: list[TensorPair]
    base_only: list[str] = field(default_factory=list)
    finetuned_only: list[str] = field(default_factory=list)
    shape_mismatch: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    non_float: list[tuple[str, str, str]] = field(default_factory=list)
    coverage: Coverage | None = None


def _listing(names: list[str], limit: int = 10) -> str:
    shown = ", ".join(f"`{n}`" for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def unpaired_error(
    base_path: object,
    ft_path: object,
    base_only: list[str],
    ft_only: list[str],
    mismatch: list[tuple[str, tuple[int, ...], tuple[int, ...]]],
    *,
    ft_label: str = "fine-tune",
    non_float: list[tuple[str, str, str]] | None = None,
) -> UnpairedTensorError:
    """The one-line error that lists everything that did not pair, on both sides.

    ``non_float`` holds ``(name, side, dtype)`` for names that are integer/bool on ``side``
    and floating on the other: they are named as such, never as "only in" a side.
    """
    parts = _unpaired_parts(
        base_path, ft_path, base_only, ft_only, mismatch, ft_label=ft_label, non_float=non_float
    )
    return UnpairedTensorError(
        "Checkpoints do not pair: "
        + "; ".join(parts)
        + ". Pass allow_unpaired=True (--allow-unpaired) to compare only the tensors that pair.",
        base_only=base_only,
        finetuned_only=ft_only,
        shape_mismatch=mismatch,
    )


def _unpaired_parts(
    base_path: object,
    ft_path: object,
    base_only: list[str],
    ft_only: list[str],
    mismatch: list[tuple[str, tuple[int, ...], tuple[int, ...]]],
    *,
    ft_label: str = "fine-tune",
    non_float: list[tuple[str, str, str]] | None = None,
) -> list[str]:
    """One phrase per kind of tensor left out (see :func:`unpaired_error`)."""
    parts = []
    for side, other in (("base", ft_label), (ft_label, "base")):
        odd = [(n, d) for n, s, d in non_float or [] if s == side]
        if odd:
            shown = ", ".join(f"`{n}` ({d})" for n, d in odd[:10])
            more = f" and {len(odd) - 10} more" if len(odd) > 10 else ""
            parts.append(
                f"{len(odd)} integer/bool in {side} but floating in {other} (not weights; "
                f"skipped): {shown}{more}"
            )
    if base_only:
        parts.append(f"{len(base_only)} only in base `{base_path}`: {_listing(base_only)}")
    if ft_only:
        parts.append(f"{len(ft_only)} only in {ft_label} `{ft_path}`: {_listing(ft_only)}")
    if mismatch:
        shown = "; ".join(
            f"`{n}` base {list(b)} vs {ft_label} {list(f)}" for n, b, f in mismatch[:10]
        )
        more = f" and {len(mismatch) - 10} more" if len(mismatch) > 10 else ""
        parts.append(f"{len(mismatch)} with different shapes: {shown}{more}")
    return parts


def _coverage(
    base: Checkpoint,
    finetuned: Checkpoint,
    pairs: list[TensorPair],
    b_left: list[str],
    f_left: list[str],
    mismatch: list[tuple[str, tuple[int, ...], tuple[int, ...]]],
    non_float: list[tuple[str, str, str]],
) -> Coverage:
    compared = sum(p.numel for p in pairs)
    left = sum(base.tensors[n].numel for n in b_left)
    left += sum(finetuned.tensors[n].numel for n in f_left)
    left += sum(finetuned.tensors[n].numel for n, _, _ in mismatch)
    left += sum(
        (finetuned if side == "base" else base).tensors[n].numel for n, side, _ in non_float
    )
    skipped = [t for c in (base, finetuned) for t in c.tensors.values() if not t.is_float]
    return Coverage(
        compared=compared,
        total=compared + left,
        unpaired_tensors=len(b_left) + len(f_left) + len(mismatch),
        skipped_tensors=len(skipped),
        skipped_numel=sum(t.numel for t in skipped),
    )


def split_rows(name: str, ft: TensorInfo, base: TensorInfo, note: str) -> list[TensorPair] | None:
    """Pairs for a tensor whose vocabulary grew (common rows + new rows), else None."""
    if (
        len(ft.shape) != 2
        or len(base.shape) != 2
        or ft.shape[1] != base.shape[1]
        or ft.shape[0] <= base.shape[0]
        or classify_module(name) not in ("embedding", "lm_head")
    ):
        return None
    common = base.numel
    note = (note + "; " if note else "") + (
        f"vocabulary resized {base.shape[0]} -> {ft.shape[0]} rows: common rows compared, "
        f"{ft.shape[0] - base.shape[0]} new rows reported apart (prior centre 0)"
    )
    return [
        TensorPair(name, "full", ft, base, 0, common, note),
        TensorPair(name, "new_rows", ft, None, common, ft.numel, note),
    ]


def pair_checkpoints(
    base: Checkpoint, finetuned: Checkpoint, *, allow_unpaired: bool = False
) -> PairingPlan:
    """Pair two planned checkpoints tensor by tensor (see the module docstring for the rules).

    Raises
    ------
    UnpairedTensorError
        Tensors left unpaired or paired with a different shape, listed for both sides,
        unless ``allow_unpaired``.
    """
    skipped = sorted(
        {f"base:{n}" for n, t in base.tensors.items() if not t.is_float}
        | {f"fine-tune:{n}" for n, t in finetuned.tensors.items() if not t.is_float}
    )
    b_float = {n: t for n, t in base.tensors.items() if t.is_float}
    f_float = {n: t for n, t in finetuned.tensors.items() if t.is_float}
    non_float = [
        (n, "base" if n in f_float else "fine-tune", (b if n in f_float else f).dtype_name)
        for n, b in base.tensors.items()
        if (f := finetuned.tensors.get(n)) is not None and b.is_float != f.is_float
    ]
    odd = {n for n, _, _ in non_float}
    notes: list[str] = []
    matched: dict[str, tuple[str, str]] = {}  # ft name -> (base name, how)
    b_left = [n for n in b_float if n not in f_float and n not in odd]
    f_left = [n for n in f_float if n not in b_float and n not in odd]
    for n in f_float:
        if n in b_float:
            matched[n] = (n, "")
    if b_left and f_left:
        resolver = NameResolver(b_left)
        for n in list(f_left):
            hit, how = resolver.resolve(n, tied=False)
            if hit is not None:
                matched[n] = (hit, "canonical")
                f_left.remove(n)
                b_left.remove(hit)
        if any(how == "canonical" for _, how in matched.values()):
            notes.append("some tensor names differ by a wrapper prefix; paired by canonical name")
    tied_both = bool(base.tie_word_embeddings) and bool(finetuned.tie_word_embeddings)
    for n in list(f_left):  # head only in the fine-tune: it was untied
        emb = NameResolver(b_float).embedding
        if _is_head(n) and emb is not None and not any(_is_head(b) for b in b_float):
            matched[n] = (emb, "tied")
            f_left.remove(n)
            notes.append(f"`{n}` exists only in the fine-tune; paired with the base's tied `{emb}`")
    for b in list(b_left):  # head only in the base: the fine-tune is tied
        emb = NameResolver(f_float).embedding
        if _is_head(b) and emb is not None and not any(_is_head(f) for f in f_float):
            matched[f"{b}"] = (b, "tied-finetuned")
            b_left.remove(b)
            notes.append(f"`{b}` exists only in the base; paired with the fine-tune's tied `{emb}`")
    pairs: list[TensorPair] = []
    mismatch: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = []
    ft_embedding = NameResolver(f_float).embedding
    for f_name, (b_name, how) in matched.items():
        if how == "tied-finetuned":
            ft_info, b_info = f_float[ft_embedding], b_float[b_name]
        else:
            ft_info, b_info = f_float[f_name], b_float[b_name]
        if tied_both and _is_head(f_name) and how == "" and ft_embedding not in (None, f_name):
            notes.append(f"`{f_name}` is tied to `{ft_embedding}` on both sides: counted once")
            continue
        note = {"canonical": f"paired with base `{b_name}`", "tied": f"paired with base tied `{b_name}`",
                "tied-finetuned": f"paired with fine-tune tied `{ft_embedding}`"}.get(how, "")  # fmt: skip
        if ft_info.shape == b_info.shape:
            pairs.append(TensorPair(f_name, "full", ft_info, b_info, 0, ft_info.numel, note))
            continue
        resized = split_rows(f_name, ft_info, b_info, note)
        if resized is None:
            mismatch.append((f_name, b_info.shape, ft_info.shape))
        else:
            pairs.extend(resized)
            notes.append(f"`{f_name}`: {resized[0].note}")
    if (b_left or f_left or mismatch or non_float) and not allow_unpaired:
        raise unpaired_error(
            base.path, finetuned.path, b_left, f_left, mismatch, non_float=non_float
        )
    coverage = _coverage(base, finetuned, pairs, b_left, f_left, mismatch, non_float)
    if not pairs:
        raise UnpairedTensorError(
            f"Base `{base.path}` and fine-tune `{finetuned.path}`: no floating tensor pairs "
            f"(by name, canonical name or tied head), so there is nothing to compare ("
            f"{coverage}); a KL over zero tensors would be 0. Check that the two checkpoints "
            "are the same architecture.",
            base_only=b_left,
            finetuned_only=f_left,
            shape_mismatch=mismatch,
        )
    if b_left or f_left or mismatch or non_float:
        detail = "; ".join(
            _unpaired_parts(
                base.path, finetuned.path, b_left, f_left, mismatch, non_float=non_float
            )
        )
        warnings.warn(
            f"Only part of the checkpoints is compared (allow_unpaired): {coverage}. "
            f"Left out: {detail}.",
            UserWarning,
            stacklevel=2,
        )
    order = {f: i for i, f in enumerate(finetuned.files)}
    pairs.sort(key=lambda p: (order.get(p.finetuned.file, 0), p.finetuned.data_start or 0, p.start))
    return PairingPlan(pairs, b_left, f_left, mismatch, skipped, notes, non_float, coverage)
