"""Reference values for the PAC-Bayes bound tests, computed independently of pacbound.

Provenance: every "truth" value below was computed with mpmath at 100 digits, outside this
package: bisection for the kl inverses (the same certified root as ``tests/pacbound/_mpref.py``,
which recomputes the kl-inverse rows in ``test_kl_inverse.py``) and the closed-form bounds
(McAllester 1999 with Maurer's constant, the kl bound of Maurer 2004, Catoni 2007, Thiemann et
al. 2017, the exact binomial test-set bound) evaluated directly from their formulas. They were
cross-checked against the pure-Python functions of public PAC-Bayes implementations on the same
inputs (GRAAL-Research/majority-vote-bounds, Lotfi et al. 2022's tight-pac-bayes, pacbb, PBB).
Values given to fewer digits (xi(n), the optimal Catoni C, the Dziugaite & Roy 2017 report) are
marked; the tests use a matching absolute tolerance and say so.
"""

# kl inverse: (q, c, sup, inf). ``None`` marks a value below the smallest double
# (inf(1e-9, 0.02) ~ 10^-8685899, 0 in double).
KL_INVERSE = [
    (0.1, 0.05, 0.22007860110692463, 0.031278396272279367),
    (0.0, 0.01, 0.0099501662508319466, 0.0),
    (0.0, 1.0, 0.63212055882855768, 0.0),
    (0.5, 0.1, 0.712878631455824, 0.287121368544176),
    (0.9, 0.05, 0.96872160372772065, 0.77992139889307541),
    (0.99, 0.001, 0.99381996911282338, 0.98487695439573835),
    (0.01, 1e-6, 0.010141366492335235, 0.0098599401707305571),
    (1e-9, 0.02, 0.019801344161620341, None),
    (0.02, 0.1, 0.15081151211866953, 5.0199986363413388e-5),
    (0.3, 10.0, 0.9999997389039429, 4.3571310049912883e-16),
    (0.999999, 1e-3, 1.0, 0.99899259163310821),  # sup is 1.0 in double
    (1.0, 0.1, 1.0, 0.90483741803595957),  # inf = e^-0.1
    (0.1, 0.0, 0.1, 0.1),
    (0.028, 0.094, 0.16095181623212328, 0.00036861323976526829),
]

# Bounds: inputs (q, KL, n, delta), then one value per bound (ln term ln(2 sqrt(n)/delta) unless
# the name says otherwise: kl_n1 uses n + 1, kl_exact the exact xi(n)).
BOUND_CASES = [
    dict(
        q=0.02,
        kl=500.0,
        n=30000,
        delta=0.025,
        mcallester=0.112153540623,
        kl_2sqrt=0.0573109088801,
        kl_n1=0.0575260042615,
        kl_exact=0.0572884966205,
        f_quad=0.0680949494215,
        lambda_star=0.70629246,
        f_lambda_1=0.0739691001977,
        catoni_c1=0.0571427611588,
        catoni_inf=0.0570282455053,
    ),
    dict(
        q=0.0,
        kl=100.0,
        n=10000,
        delta=0.05,
        mcallester=0.0735846620024,
        kl_2sqrt=0.0107709780578,
        kl_n1=0.0111579009293,
        kl_exact=0.0107252704239,
        f_quad=0.021658809928,
        lambda_star=1.0,
        f_lambda_1=0.021658809928,
        catoni_c1=0.0162100632712,
        catoni_inf=0.0102467142536,
    ),
    dict(
        q=0.1,
        kl=5000.0,
        n=60000,
        delta=0.025,
        mcallester=0.304325783096,
        kl_2sqrt=0.263439927073,
        kl_n1=0.263535044817,
        kl_exact=0.263430722289,
        f_quad=0.337353616083,
        lambda_star=None,
        f_lambda_1=0.366996102552,
        catoni_c1=0.265076916262,
        catoni_inf=0.263317334724,
    ),
    dict(
        q=0.3,
        kl=50.0,
        n=1000,
        delta=0.05,
        mcallester=0.469030702971,
        kl_2sqrt=0.46567673853,
        kl_n1=0.469775995406,
        kl_exact=0.464998689841,
        f_quad=0.550923429361,
        lambda_star=None,
        f_lambda_1=0.714285514187,
        catoni_c1=0.470511208748,
        catoni_inf=0.4593328134,
    ),
]
#: pytest ids of BOUND_CASES.
CASE_IDS = [f"q={c['q']},KL={c['kl']},n={c['n']}" for c in BOUND_CASES]


def case_args(case: dict) -> tuple[float, float, int, float]:
    """``(emp_risk, kl, n, delta)`` of a BOUND_CASES row, in the bounds' argument order."""
    return case["q"], case["kl"], case["n"], case["delta"]


# The optimal C of case 1 (C* = 1.0863), 4 decimals.
CATONI_C_STAR_CASE1 = 1.0863
# Linear-in-lambda bound, case 1, lambda in {2^0 .. 2^29}, ln(30/delta).
ALQUIER_GRID_CASE1 = 0.116033977478
# xi(n) = sum_k C(n,k)(k/n)^k(1-k/n)^(n-k), 4 decimals (2 sqrt(n) is 5.657, 20, 63.246, 346.41).
XI = {8: 4.2450, 100: 13.2100, 1000: 40.3032, 30000: 217.7476}

# Published or repo-provided inputs, where our API computes the quantity.
# GRAAL majority-vote-bounds README: pac_bound_zero(0.2, 1000, 2.0) = 0.5120518556712952, which
# is 2 x the PAC-Bayes-kl bound with exact xi(m) at delta = 0.05 (the anchor's brentq leaves
# ~6e-13 of error, well inside rtol 1e-10).
GRAAL_PAC_BOUND_ZERO = dict(q=0.2, m=1000, kl=2.0, delta=0.05, value=0.5120518556712952)
# Lotfi et al. 2022 tests/TestBounds.py: q = 1 - 0.710693, KL = 1724, n = 30000, eps = 0.05.
LOTFI_2022 = dict(
    q=1 - 0.710693,
    kl=1724.0,
    n=30000,
    delta=0.05,
    catoni_as_kl_inverse_ln20=0.4548660103717645,  # = kl^-1(q, (KL + ln 20)/n)
    thiemann_lambda_star=0.5387921145702749,  # = f_quad
    maurer_kl=0.4551577078448246,  # kl bound, xi = 2 sqrt(n)
)
# Lotfi 2022 ImageNet replicate: n = 1281167, error 0.78, KL = 1e5 log2(20) ln 2 nats;
# Catoni (their optimum over all C, i.e. kl^-1 with ln(1/delta)) at delta = 0.05, 10 digits.
LOTFI_IMAGENET = dict(q=0.78, n=1281167, delta=0.05, catoni=0.9641521722)
# Dziugaite & Roy 2017, T-600 (q = 0.028, KL ~ 5144, m = 55000): "0.161", 3 digits, as
# reported; the kl-inverse row (0.028, 0.094) of KL_INVERSE is the exact check.
DZIUGAITE_ROY_T600 = dict(q=0.028, kl=5144.0, m=55000, delta=0.025, value=0.161)

# pacbb's McAllester as intended (its code computes 0.1305972378), binomial test-set bounds and
# the Monte-Carlo step.
PACBB_MCALLESTER_INTENDED = dict(q=0.02, kl=500.0, n=30000, delta=0.025, value=0.1121535406)
TEST_SET = [  # (n, k, delta, binomial tail, Chernoff kl^-1(k/n, ln(1/delta)/n))
    (10000, 100, 0.01, 0.01256758205, 0.01332693554),
    (1000, 0, 0.05, 0.002991249545, 0.002991249545),
    (100, 5, 0.05, 0.1022533776, 0.1215270364),
]
# MC step: kl^-1(0.05, ln(2/0.01)/1000) = kl^-1(0.05, ln(1/delta')/m) with delta' = 0.005.
MC_STEP = dict(q_mc=0.05, m=1000, delta_mc=0.005, value=0.0756510963274)
