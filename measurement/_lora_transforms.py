"""Arithmetic on LoRA factors: the factored norm, and the LoRA and DoRA merges row by row.

For a LoRA module with factors A (r x in), B (out x r) and scaling s (see
:mod:`measurement._lora`), the weight change is ΔW = s·B·A. Its squared Frobenius norm needs the
adapter alone::

    ‖s B A‖²_F = s² tr(Aᵀ Bᵀ B A) = s² tr((BᵀB)(AAᵀ)) = s² Σ_jk (BᵀB)_jk (AAᵀ)_jk

in O((out + in) r²) operations, computed here in float64.

DoRA (``use_dora``) rescales every output row: W' = m / ‖W + sBA‖_row ⊙ (W + sBA), where the
norm runs over the input dimension and m is ``lora_magnitude_vector``; ΔW = W' − W needs the
base tensor W of that module, which is read (that module only), row by row by the streaming
pass (:class:`~measurement._stream.RowTransform`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from measurement._stream import RowTransform

if TYPE_CHECKING:
    import torch

__all__ = ["DoraTransform", "LoraDeltaTransform", "lora_sq_norm"]


def lora_sq_norm(A: torch.Tensor, B: torch.Tensor, scaling: float) -> float:
    """‖s·B·A‖²_F = s²·Σ (BᵀB) ⊙ (AAᵀ), in float64, without forming B·A.

    Parameters
    ----------
    A : tensor of shape (r, in)
    B : tensor of shape (out, r)
    scaling : float
        s.
    """
    a = A.double()
    b = B.double()
    return float(scaling**2 * ((b.T @ b) * (a @ a.T)).sum())


class LoraDeltaTransform(RowTransform):
    """Rows of W_ft = W + s·ΔW, where W is the base chunk or the fine-tuned chunk already read.

    ``onto="base"`` builds the fine-tuned rows from the base rows (LoRA with base norms);
    ``onto="finetuned"`` adds the delta to the rows read from the adapter's saved base layer
    (embedding LoRA). ``row_offset`` shifts rows (new rows after a vocabulary resize).
    """

    def __init__(
        self,
        A: torch.Tensor,
        B: torch.Tensor,
        scaling: float,
        fan_in_fan_out: bool,
        *,
        onto: str = "base",
        row_offset: int = 0,
    ):
        self.A, self.B, self.scaling, self.fifo = A, B, scaling, fan_in_fan_out
        self.onto, self.row_offset = onto, row_offset

    def prepare(self, device: torch.device) -> None:
        import torch

        self._A = self.A.to(device=device, dtype=torch.float32)
        self._B = self.B.to(device=device, dtype=torch.float32)

    def delta_rows(self, row0: int, row1: int, dtype: Any) -> torch.Tensor:
        r0, r1 = row0 + self.row_offset, row1 + self.row_offset
        A, B = self._A.to(dtype), self._B.to(dtype)
        if self.fifo:  # stored (in, out): rows of (BA)ᵀ are columns of BA
            return (A[:, r0:r1].T @ B.T) * self.scaling
        return (B[r0:r1] @ A) * self.scaling

    def apply(
        self, ft: torch.Tensor, base: torch.Tensor | None, row0: int, row1: int
    ) -> torch.Tensor:
        """Write W_ft into ``ft``; return the delta, formed without cancellation."""
        delta = self.delta_rows(row0, row1, ft.dtype)
        if self.onto == "base":
            ft.copy_(base).add_(delta)
            return delta
        if base is None:  # new rows: prior centre 0
            ft.add_(delta)
            return ft
        total = (ft - base).add_(delta)  # (saved base layer - base) + s·ΔW
        ft.add_(delta)
        return total


class DoraTransform(LoraDeltaTransform):
    """W' = m / ‖W + sBA‖_row ⊙ (W + sBA) (peft's DoRA merge), from base rows.

    Also records the base row norms ‖W‖_row, the data-free initial magnitude (B₀ = 0), used
    as the prior centre of the magnitude in the adapter-space posterior family.
    For ``fan_in_fan_out`` layers the job is one chunk holding the whole tensor.
    """

    stateful = True

    def __init__(self, A, B, magnitude, scaling: float, fan_in_fan_out: bool, shape):  # type: ignore[no-untyped-def]
        super().__init__(A, B, scaling, fan_in_fan_out)
        self.magnitude = magnitude
        self.shape = tuple(shape)
        self.base_row_sq: torch.Tensor | None = None

    def prepare(self, device: torch.device) -> None:
        import torch

        super().prepare(device)
        self._m = self.magnitude.to(device=device, dtype=torch.float32)
        out = self.magnitude.numel()
        self.base_row_sq = torch.zeros(out, dtype=torch.float64, device=device)

    def apply(  # type: ignore[override]
        self, ft: torch.Tensor, base: torch.Tensor | None, row0: int, row1: int
    ) -> None:
        assert base is not None
        if self.fifo:  # whole tensor in one chunk: logical W = stored Wᵀ
            w = base.reshape(self.shape).T
            merged = w + (self._B.to(w.dtype) @ self._A.to(w.dtype)) * self.scaling
            self.base_row_sq += w.double().square().sum(dim=1)
            norm = torch_norm_rows(merged)
            merged = merged * (self._m.to(w.dtype) / norm).unsqueeze(1)
            ft.copy_(merged.T.reshape(ft.shape))
            return
        ft.copy_(base).add_(self.delta_rows(row0, row1, ft.dtype))
        self.base_row_sq[row0:row1] += base.double().square().sum(dim=1)
        norm = torch_norm_rows(ft)
        ft.mul_((self._m[row0:row1].to(ft.dtype) / norm).unsqueeze(1))


def torch_norm_rows(x: torch.Tensor) -> torch.Tensor:
    """Euclidean norm of each row (over the input dimension)."""
    import torch

    return torch.linalg.vector_norm(x, dim=1)
