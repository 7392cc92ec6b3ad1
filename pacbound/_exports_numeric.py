"""Public names of :mod:`pacbound` from this part of the package: name -> defining module."""

EXPORTS: dict[str, str] = {
    # binary kl and its inverses
    "kl_bernoulli": "pacbound._kl",
    "kl_inv_upper": "pacbound._kl_inverse",
    "kl_inv_lower": "pacbound._kl_inverse",
    "kl_inverse_backend": "pacbound._kl_inverse_backend",
    # bounds
    "BoundResult": "pacbound._results",
    "mcallester": "pacbound._bounds",
    "kl_bound": "pacbound._bounds",
    "maurer_xi": "pacbound._bounds",
    "thiemann": "pacbound._bounds",
    "f_quad": "pacbound._bounds",
    "catoni": "pacbound._catoni",
    "linear_lambda": "pacbound._catoni",
    "DEFAULT_CATONI_GRID": "pacbound._catoni",
    "DEFAULT_LAMBDA_GRID": "pacbound._catoni",
    "dziugaite_roy": "pacbound._certificates",
    "dziugaite_roy_grid": "pacbound._certificates",
    "mc_certificate": "pacbound._certificates",
    "test_set_bound": "pacbound._certificates",
    "test_set_lower_bound": "pacbound._certificates",
    # Gaussian KL
    "gaussian_kl_diagonal": "pacbound._gaussian",
    "gaussian_kl_grouped": "pacbound._gaussian",
    # torch (imports torch on first use only)
    "torch_kl_inv_upper": "pacbound._torch",
    "torch_kl_inv_lower": "pacbound._torch",
}
