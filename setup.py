"""Build of the one compiled part of sft-tradeoff: the fused kl-inverse kernel.

Everything else is in pyproject.toml. The extension is optional: without a C compiler the
install still succeeds and pacbound computes the kl inverses with numpy array passes
(``pacbound.kl_inverse_backend()`` says which). Floating-point contraction stays off so that
every operation rounds as in the numpy path; ``-fno-trapping-math`` lets the compiler
if-convert the branch-free loops into SIMD selects.
"""

from __future__ import annotations

import sys

from setuptools import Extension, setup

_GCC_LIKE_FLAGS = ["-O3", "-ffp-contract=off", "-fno-math-errno", "-fno-trapping-math"]

setup(
    ext_modules=[
        Extension(
            "pacbound._kl_inverse_kernel",
            sources=["pacbound/_kl_inverse_kernel.c"],
            extra_compile_args=[] if sys.platform == "win32" else _GCC_LIKE_FLAGS,
            optional=True,
        )
    ]
)
