"""Public names of :mod:`pacbound` from this part of the package: name -> defining module.

The symbolic side (sympy): the bounds as expressions, the optimal-lambda derivations and the
difficulty/budget tradeoff. sympy loads only when one of these names is first used.
"""

EXPORTS: dict[str, str] = {
    # the bounds as sympy expressions (pacbound._symbolic)
    "BOUND_SYMBOLS": "pacbound._symbolic",
    "kl_bernoulli_expr": "pacbound._symbolic",
    "mcallester_expr": "pacbound._symbolic",
    "kl_bound_relation": "pacbound._symbolic",
    "kl_inverse_edges": "pacbound._symbolic",
    "catoni_expr": "pacbound._symbolic",
    "linear_lambda_expr": "pacbound._symbolic",
    "thiemann_complexity_expr": "pacbound._symbolic",
    "thiemann_expr": "pacbound._symbolic",
    "f_quad_expr": "pacbound._symbolic",
    "optimal_lambda": "pacbound._symbolic",
    "LambdaOptimum": "pacbound._symbolic",
    # the tradeoff B(d, n) = G_gen(K(d), n) + C T(d)
    "derive_tradeoff": "pacbound._tradeoff",
    "TradeoffDerivation": "pacbound._derivation",
    "DStarSolution": "pacbound._tradeoff_numeric",
}
