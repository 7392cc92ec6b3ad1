"""Certificates of one sweep cell with learnt and base-centred priors, and the base baseline.

For one planned run (difficulty d, n training examples, seed) of a sweep spec:

1. the training set is split at random (``prior_fraction``, default 0.5, with ``split_seed``,
   both recorded) into a prior part and a bound part (Pérez-Ortiz et al. 2021; Dziugaite et al.
   2021);
2. the **prior run** is fine-tuned from the base on the prior part with the sweep's own training
   code; the fine-tune itself (all n examples) is trained the same way unless given;
3. three certificates of the 0-1 sequence error (or the clipped NLL):

   a. the base model itself (KL = 0), on all n examples and on the bound part;
   b. a base-centred Gaussian posterior (prior N(w_base, λ²), mean starting at the fine-tune),
      trained against the bound on all n examples and certified on all of them;
   c. a learnt-prior posterior (prior N(w_prior, λ²), mean starting at w_prior), trained on all
      n examples and certified on the bound part only (n = its size), after checking that the
      prior's rows are disjoint from it;

4. the held-out in-distribution error: fresh samples of D_train(d) (a seed stream distinct
   from the training set's), the same loss, for the fine-tune and for each posterior's mean.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pacbound.exceptions import InvalidParameterError

__all__ = [
    "CellCertificates",
    "RunCertificate",
    "certify_cell",
    "certify_run",
    "certify_sweep_runs",
    "split_rows",
]

HELD_OUT_SEED = 1_000_003
"""Offset of the seed of the held-out samples of D_train(d) (never a training seed)."""


def split_rows(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A uniform random split of ``range(n)``: (prior rows, bound rows), each sorted."""
    if not 0.0 < fraction < 1.0:
        raise InvalidParameterError(f"`prior_fraction` must be in (0, 1); got {fraction!r}.")
    k = round(n * fraction)
    if not 1 <= k < n:
        raise InvalidParameterError(
            f"`prior_fraction` {fraction} of n = {n} must leave both parts non-empty; got {k}."
        )
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[:k]), np.sort(perm[k:])


class _SubsetTask:
    """The sweep task with its training records replaced by a fixed list (the prior part)."""

    def __init__(self, task: Any, records: list):
        self._task, self._records = task, records

    def train_records(self, difficulty: Any, n: int, seed: int) -> list:
        return list(self._records)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._task, name)


@dataclass(frozen=True)
class CellCertificates:
    """The certificates of one cell (module docstring), with the held-out error beside them.

    Attributes
    ----------
    run : dict
        The planned run (difficulty, n, seed).
    split : dict
        ``prior_fraction``, ``split_seed``, sizes of the prior and bound parts.
    base : dict
        Base-model baselines: ``"all"`` and ``"bound"`` (risk, value, n).
    base_centred, learnt : dict
        Each: ``certificate`` (:meth:`PosteriorCertificate.to_dict`) and ``posterior``.
    held_out : dict
        Held-out error of the base, the fine-tune and each posterior mean, and its size.
    seconds : dict
    """

    run: dict
    split: dict
    loss: str
    base: dict
    base_centred: dict
    learnt: dict
    held_out: dict
    seconds: dict = field(default_factory=dict)

    def __str__(self) -> str:
        r, h = self.run, self.held_out
        lines = [
            f"cell {r['difficulty_label']} n={r['n']} seed={r['seed']} (loss {self.loss}); "
            f"held-out error on {h['n']} fresh samples: fine-tune {h['finetune']:.4f}, "
            f"base {h['base']:.4f}",
            f"  (a) base model itself (KL = 0): {self.base['all']['value']:.4f} on n = "
            f"{self.base['all']['n']} (risk {self.base['all']['risk']:.4f}); on the bound part "
            f"{self.base['bound']['value']:.4f}",
        ]
        for tag, part in (("(b)", self.base_centred), ("(c)", self.learnt)):
            c = part["certificate"]
            lines.append(
                f"  {tag} {c['value']:.4f} [{c['label']}] n = {c['n']}, KL = {c['kl']:.1f}, "
                f"q_MC = {c['q_mc']:.4f}, m = {c['m']}; held-out error of its mean "
                f"{part['held_out_mean']:.4f}"
            )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _key(prompt: list[int], completion: list[int]) -> str:
    return hashlib.sha256(f"{prompt}|{completion}".encode()).hexdigest()[:16]


def certify_cell(
    spec: Any,
    run: Any,
    out_dir: str | Path,
    *,
    config: Any = None,
    base_config: Any = None,
    prior_fraction: float = 0.5,
    split_seed: int = 0,
    finetune_dir: str | Path | None = None,
    held_out: int = 512,
    progress: bool = True,
) -> CellCertificates:
    """Train the prior run, train the posteriors against the bound, certify (module docstring).

    Parameters
    ----------
    spec : SweepSpec
        The sweep spec (base, task, training settings).
    run : PlannedRun
        The cell's run (difficulty label, n, seed, budget).
    out_dir : path
        Receives ``prior/`` (the prior run), ``finetune/`` (unless given), ``posterior-*/``
        and ``certificates.json``.
    config : measurement.PosteriorConfig, optional
    base_config : measurement.PosteriorConfig, optional
        For the base-centred posterior (default ``config``), e.g. fewer Monte-Carlo samples
        where its KL alone makes it vacuous.
    prior_fraction : float in (0, 1)
        Share of the training set the prior is trained on (fixed in advance).
    split_seed : int
        Seed of the split (recorded).
    finetune_dir : path, optional
        An existing fine-tune of this run (trained on all n examples).
    held_out : int
        Fresh samples of D_train(d) for the held-out error.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    import measurement
    from fits.sweep._train import encode_records, train_one
    from pacbound.support import write_json

    cfg = config or measurement.PosteriorConfig()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    say = print if progress else (lambda *a, **k: None)
    t = {}
    task, diff, base_dir, records = _run_context(spec, run)
    prior_rows, bound_rows = split_rows(len(records), prior_fraction, split_seed)

    t0 = time.perf_counter()
    prior_dir = out / "prior"
    if not (prior_dir / "model.safetensors").is_file():
        say(f"training the prior run on {len(prior_rows)} examples ...")
        prior_run = dataclasses.replace(run, run_id=f"{run.run_id}-prior", n=len(prior_rows))
        sub = _SubsetTask(task, [records[i] for i in prior_rows])
        train_one(spec, prior_run, diff, sub, base_dir, prior_dir, test_records=[])
    t["prior_train"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    ft_dir = Path(finetune_dir) if finetune_dir is not None else out / "finetune"
    if not (ft_dir / "model.safetensors").is_file():
        say(f"training the fine-tune on {len(records)} examples ...")
        train_one(spec, run, diff, task, base_dir, ft_dir, test_records=[])
    t["finetune_train"] = time.perf_counter() - t0

    tok = AutoTokenizer.from_pretrained(base_dir)
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id

    def tokens(recs: list) -> Any:
        prompts, comps = encode_records(tok, recs, chat=task.chat)
        keys = [_key(p, c) for p, c in zip(prompts, comps, strict=True)]
        return measurement.TokenData.from_ids(prompts, comps, pad_id=pad, keys=keys)

    data = tokens(records)
    bound = data.subset(bound_rows)
    prior_part = data.subset(prior_rows)
    fresh = task.train_records(diff, held_out, HELD_OUT_SEED + run.seed)
    held = tokens(fresh)

    def load(path: Path):
        return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()

    def err(model) -> float:
        ev = measurement.evaluate_model(model, held, p_min=cfg.p_min)
        return float(np.mean(ev[cfg.loss]))

    def with_mean(model, post) -> Any:
        with torch.no_grad():
            params = dict(model.named_parameters())
            for n in post.names:
                params[n].copy_(post.mean[n])
        return model

    base_model = load(base_dir)
    base_state = {n: p.detach().clone() for n, p in base_model.named_parameters()}
    base_out = {
        part: measurement.base_model_certificate(
            base_model, rows, loss=cfg.loss, p_min=cfg.p_min, delta=cfg.delta
        )
        for part, rows in (("all", data), ("bound", bound))
    }
    held_base = err(base_model)

    # (b) base-centred: prior at the base, mean from the fine-tune, bound set = all n
    t0 = time.perf_counter()
    model = load(ft_dir)
    held_ft = err(model)
    say("training the base-centred posterior ...")
    post_b = measurement.train_posterior(
        model,
        data,
        prior_centre=base_state,
        n_bound=len(data),
        provenance="base",
        config=base_config or cfg,
    )
    say(str(post_b))
    cert_b = measurement.certify_posterior(model, post_b, data)
    say(str(cert_b))
    post_b.save(out / "posterior-base-centred")
    held_b = err(with_mean(model, post_b))
    t["base_centred"] = time.perf_counter() - t0

    # (c) learnt prior: prior at the prior run, mean from it, bound set = the bound part
    t0 = time.perf_counter()
    model = load(prior_dir)
    prior_state = measurement.load_prior_centre(prior_dir)
    say("training the learnt-prior posterior ...")
    post_c = measurement.train_posterior(
        model, data, prior_centre=prior_state, n_bound=len(bound), provenance="learnt", config=cfg
    )
    say(str(post_c))
    cert_c = measurement.certify_posterior(model, post_c, bound, prior_keys=prior_part.keys)
    say(str(cert_c))
    post_c.save(out / "posterior-learnt")
    held_c = err(with_mean(model, post_c))
    t["learnt"] = time.perf_counter() - t0

    result = CellCertificates(
        run=run.to_dict(),
        split={
            "prior_fraction": prior_fraction,
            "split_seed": split_seed,
            "n_prior": len(prior_rows),
            "n_bound": len(bound_rows),
        },
        loss=cfg.loss,
        base=base_out,
        base_centred={
            "certificate": cert_b.to_dict(),
            "posterior": post_b.to_dict(),
            "held_out_mean": held_b,
        },
        learnt={
            "certificate": cert_c.to_dict(),
            "posterior": post_c.to_dict(),
            "held_out_mean": held_c,
        },
        held_out={"n": len(held), "base": held_base, "finetune": held_ft, "seed": HELD_OUT_SEED},
        seconds=t,
    )
    write_json(out / "certificates.json", result.to_dict())
    return result


# --- the demo's per-run certificate: a learnt prior, no posterior training, no Monte Carlo ---

RUN_CERT_FILE = "certificate.json"
#: Version of the per-run certificate recipe; a saved certificate of another version is redone.
RUN_CERT_VERSION = 1
#: Prior-run recipes that were tried on the demo before the one used was fixed (the prior run
#: gets the fine-tune's optimiser steps, or the fine-tune's epochs); the certificate pays
#: ln 2 for the choice, by splitting δ between them.
PRIOR_RECIPES = ("steps", "epochs")
LEARNT_KIND = "learnt-prior"
BASE_KIND = "base-model"
FRESH_KIND = "fresh-bound-set"
KIND_TEXT = {
    LEARNT_KIND: "learnt prior (tightness only): Q = the prior run, a fine-tune from the base on "
    "a random part of the training set disjoint from the bound set, as a point mass (KL = 0); it "
    "certifies that prior run, and says nothing about the fine-tune's move from the base",
    FRESH_KIND: "fresh bound set (tightness only): Q = P = the fine-tune itself as a point mass "
    "(KL = 0), certified on fresh i.i.d. samples of D_train(d) it never saw; a test-set bound in "
    "PAC-Bayes form (the prior is 'learnt' on the run's own training rows), it says nothing "
    "about the fine-tune's move from the base",
    BASE_KIND: "base model itself as the posterior (KL = 0, zero bits; the trivial baseline, "
    "keeps the paper's base-relative meaning)",
}
"""What each certificate kind of :func:`certify_run` measures."""


@dataclass(frozen=True)
class RunCertificate:
    """In-distribution certificates of one sweep run, with held-out errors beside them.

    Attributes
    ----------
    run : dict
        The planned run (run_id, difficulty, difficulty_label, n, seed, budget_mode, steps).
    certificate : float in [0, 1]
        Learnt-prior certificate of the 0-1 error of the prior run on D_train(d).
    certificate_kind : str
        ``"learnt-prior"`` (see :data:`KIND_TEXT`).
    base_certificate : float in [0, 1]
        The base model's certificate on the same bound set (``"base-model"``).
    bound : dict
        n, δ, the empirical 0-1 risks of the prior run and of the base on the bound set, and the
        method.
    split : dict
        ``prior_fraction``, ``split_seed``, ``n_prior``, ``n_bound``, ``prior_recipe``,
        ``prior_steps``.
    held_out : dict
        0-1 error on fresh samples of D_train(d) (``n``, ``seed``) of the fine-tune, the prior
        run and the base.
    assumptions : tuple of str
    seconds : dict
    """

    run: dict
    certificate: float
    certificate_kind: str
    base_certificate: float
    bound: dict
    split: dict
    held_out: dict
    assumptions: tuple[str, ...]
    seconds: dict = field(default_factory=dict)
    version: int = RUN_CERT_VERSION

    def __str__(self) -> str:
        r, h, b = self.run, self.held_out, self.bound
        return (
            f"{r['run_id']}: certificate {self.certificate:.3f} [{self.certificate_kind}] vs "
            f"base {self.base_certificate:.3f} on n = {b['n']} (delta {b['delta']:g}); "
            f"held-out 0-1 error on {h['n']} fresh samples: fine-tune {h['finetune']:.3f}, "
            f"prior run {h['prior']:.3f}, base {h['base']:.3f}"
        )

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["assumptions"] = list(self.assumptions)
        return out

    @classmethod
    def from_dict(cls, data: dict) -> RunCertificate:
        fields = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in data.items() if k in fields}
        kw["assumptions"] = tuple(kw.get("assumptions", ()))
        return cls(**kw)

    def record(self) -> dict[str, Any]:
        """One flat row: difficulty, n, seed, the certificates and the held-out errors."""
        r = self.run
        return {
            "run_id": r["run_id"],
            "budget_mode": r["budget_mode"],
            "difficulty": float(r["difficulty"]),
            "n": int(r["n"]),
            "seed": int(r["seed"]),
            "certificate": self.certificate,
            "certificate_kind": self.certificate_kind,
            "certificate_label": KIND_TEXT[self.certificate_kind],
            "base_certificate": self.base_certificate,
            "base_certificate_kind": BASE_KIND,
            "n_bound": self.bound["n"],
            "delta": self.bound["delta"],
            "prior_bound_error": self.bound["prior_risk"],
            "base_bound_error": self.bound["base_risk"],
            "held_out_error": self.held_out["finetune"],
            "prior_held_out_error": self.held_out["prior"],
            "base_held_out_error": self.held_out["base"],
            "n_held_out": self.held_out["n"],
            "monte_carlo_samples": 0,
            "monte_carlo_slack": 0.0,
            "assumptions": list(self.assumptions),
        }


def certify_run(
    spec: Any,
    run: Any,
    finetune_dir: str | Path,
    out_dir: str | Path,
    *,
    prior_fraction: float = 0.5,
    split_seed: int = 0,
    held_out: int = 256,
    delta: float = 0.025,
) -> RunCertificate:
    """Certify one run of a sweep cheaply: a learnt prior as a point mass (no Monte Carlo).

    The training set of ``run`` (the same rows its fine-tune saw) is split at random
    (``prior_fraction``, ``split_seed``) into a prior part S_P and a bound part S_B of size n_B.
    The **prior run** is fine-tuned from the base on S_P with the sweep's training code and the
    fine-tune's own number of optimiser steps (so it differs from the fine-tune only in its
    data). It does not depend on S_B, so Q = P = δ_{prior run} has KL = 0 and the PAC-Bayes
    bound reduces to the exact binomial tail (Langford 2005): with k errors on S_B,

    .. math:: R(h) \\le \\max\\{p : \\Pr[\\mathrm{Bin}(n_B, p) \\le k] \\ge \\delta/2\\},

    with probability ≥ 1 − δ, where δ/2 pays for the two prior recipes of
    :data:`PRIOR_RECIPES`. The base model, fixed before any data, is certified on the same S_B at
    δ (the trivial baseline). The loss is the 0-1 sequence error (greedy decoding does not
    reproduce the reference completion exactly). Beside them: the 0-1 error on ``held_out``
    fresh samples of D_train(d) (seed :data:`HELD_OUT_SEED` + run seed) of the fine-tune, the
    prior run and the base.

    The result is saved in ``out_dir/certificate.json`` and reused by a rerun.

    Parameters
    ----------
    spec : SweepSpec
    run : PlannedRun
        The run (its training rows are regenerated from the task, as the sweep drew them).
    finetune_dir : path
        The run's fine-tune (for its held-out error only; it is not what is certified).
    out_dir : path
        Receives ``prior/`` (the prior run), ``prior_recipe.json`` and ``certificate.json``.
    prior_fraction : float in (0, 1)
        Share of the rows the prior run is trained on (fixed in advance).
    split_seed : int
        Seed of the random split (recorded).
    held_out : int >= 1
        Fresh samples of D_train(d) for the held-out errors.
    delta : float in (0, 1)
        Confidence budget of each certificate.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    import measurement
    from fits.sweep._train import encode_records, train_one
    from pacbound.support import write_json

    out = Path(out_dir)
    saved = out / RUN_CERT_FILE
    options = {
        "prior_fraction": prior_fraction,
        "split_seed": split_seed,
        "held_out": held_out,
        "delta": delta,
    }
    done = _saved_certificate(out, run.to_dict(), options)
    if done is not None:
        return done
    if not 0.0 < delta < 1.0:
        raise InvalidParameterError(f"`delta` must be in (0, 1); got {delta!r}.")
    if held_out < 1:
        raise InvalidParameterError(f"`held_out` must be >= 1; got {held_out!r}.")
    out.mkdir(parents=True, exist_ok=True)
    t: dict[str, float] = {}
    task, diff, base_dir, records = _run_context(spec, run)
    prior_rows, bound_rows = split_rows(len(records), prior_fraction, split_seed)

    t0 = time.perf_counter()
    prior_dir = out / "prior"
    recipe = {
        "prior_fraction": prior_fraction,
        "split_seed": split_seed,
        "recipe": PRIOR_RECIPES[0],
        "steps": run.steps,
    }
    recipe_file = out / "prior_recipe.json"
    if prior_dir.exists() and (
        not recipe_file.is_file() or json.loads(recipe_file.read_text()) != recipe
    ):
        shutil.rmtree(prior_dir)  # trained for another split or recipe: train it again
    if not (prior_dir / "model.safetensors").is_file():
        prior_run = dataclasses.replace(
            run,
            run_id=f"{run.run_id}-prior",
            n=len(prior_rows),
            budget_mode="steps",
            steps=run.steps,
            epochs=run.epochs * len(records) / len(prior_rows),
        )
        sub = _SubsetTask(task, [records[i] for i in prior_rows])
        train_one(spec, prior_run, diff, sub, base_dir, prior_dir, test_records=[])
        write_json(recipe_file, recipe)
    t["prior_train"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    tok = AutoTokenizer.from_pretrained(base_dir)
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id

    def tokens(recs: list) -> Any:
        prompts, comps = encode_records(tok, recs, chat=task.chat)
        return measurement.TokenData.from_ids(prompts, comps, pad_id=pad)

    bound = tokens([records[i] for i in bound_rows])
    fresh = tokens(task.train_records(diff, held_out, HELD_OUT_SEED + run.seed))

    def load(path: Path) -> Any:
        return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()

    def held_error(model: Any) -> float:
        return float(np.mean(measurement.evaluate_model(model, fresh)["zero_one"]))

    base_model = load(base_dir)
    base_cert = measurement.base_model_certificate(base_model, bound, delta=delta)
    base_held = held_error(base_model)
    del base_model
    prior_model = load(prior_dir)
    prior_cert = measurement.base_model_certificate(
        prior_model, bound, delta=delta / len(PRIOR_RECIPES)
    )
    prior_held = held_error(prior_model)
    del prior_model
    ft_held = held_error(load(Path(finetune_dir)))
    t["certify"] = time.perf_counter() - t0

    result = RunCertificate(
        run=run.to_dict(),
        certificate=float(prior_cert["value"]),
        certificate_kind=LEARNT_KIND,
        base_certificate=float(base_cert["value"]),
        bound={
            "n": len(bound),
            "delta": delta,
            "prior_risk": float(prior_cert["risk"]),
            "base_risk": float(base_cert["risk"]),
            "method": str(prior_cert["method"]),
        },
        split={
            "prior_fraction": prior_fraction,
            "split_seed": split_seed,
            "n_prior": len(prior_rows),
            "n_bound": len(bound_rows),
            "prior_recipe": PRIOR_RECIPES[0],
            "prior_steps": run.steps,
        },
        held_out={
            "n": len(fresh),
            "seed": HELD_OUT_SEED + run.seed,
            "finetune": ft_held,
            "prior": prior_held,
            "base": base_held,
        },
        assumptions=(
            "i.i.d. bound set: the run's training rows are i.i.d. draws of D_train(d) and the "
            f"bound set is a uniformly random {1 - prior_fraction:g} of them (split seed "
            f"{split_seed}, fraction fixed in advance)",
            "loss in [0, 1]: 0-1 sequence error (greedy decoding does not reproduce the "
            "reference completion exactly; >= the exact-answer error)",
            "prior provenance: the prior run is trained from the base on the other rows only, "
            "with the fine-tune's own optimiser steps, before the bound set is evaluated",
            f"union cost: ln {len(PRIOR_RECIPES)} for the prior recipe (the fine-tune's steps or "
            "its epochs, both tried on this demo); no other grid",
            f"delta split: delta = {delta:g} per certificate, the prior run's at delta/"
            f"{len(PRIOR_RECIPES)} per recipe, the base's at delta; no Monte Carlo "
            "(deterministic predictors, slack 0); each run's certificate is its own statement",
        ),
        seconds=t,
    )
    write_json(saved, result.to_dict())
    return result


#: Offset of the seed of the fresh bound set of :func:`certify_on_fresh_samples` (never a
#: training seed, distinct from :data:`HELD_OUT_SEED`).
FRESH_BOUND_SEED = 2_000_003


def certify_on_fresh_samples(
    spec: Any,
    run: Any,
    finetune_dir: str | Path,
    *,
    n_bound: int = 1024,
    delta: float = 0.05,
    batch_size: int = 16,
    progress: bool = True,
    base_result: dict | None = None,
) -> RunCertificate:
    r"""Certify a sweep run's fine-tune itself on ``n_bound`` fresh samples of D_train(d).

    Where a model is too costly to train twice (a real LM on a CPU), the learnt-prior
    certificate can take the run's own training rows as the prior part and fresh i.i.d. rows
    of the same distribution as the bound part (prior fraction n / (n + n_bound), fixed in
    advance): Q = P = δ_{fine-tune}, KL = 0, and with k errors on the bound set

    .. math:: R(h) \le \max\{p : \Pr[\mathrm{Bin}(n_B, p) \le k] \ge \delta\},

    with probability ≥ 1 − δ (Langford 2005), the same number a binomial test-set bound gives.
    The base model is certified on the same rows at δ. The loss is the 0-1 sequence error
    (the teacher-forced greedy choice misses a completion token), which is ≥ the exact-answer
    error of greedy decoding, so the certificate also bounds the answer error.

    Parameters
    ----------
    spec : SweepSpec
    run : PlannedRun
    finetune_dir : path
        The run's output folder (full weights or a PEFT adapter over the spec's base).
    n_bound : int >= 1
        Fresh bound samples (seed :data:`FRESH_BOUND_SEED` + run seed).
    delta : float in (0, 1)
    batch_size : int
        Examples per forward pass (a 49k-token vocabulary makes large batches costly).
    base_result : dict, optional
        The base model's certificate on these very rows from an earlier call (``value``,
        ``risk``, ``method``, and the ``difficulty_label``, ``seed``, ``n_bound`` and ``delta``
        it was computed for, which must match): the rows depend on d, the seed and n_bound
        only, not on the run's n, so the base is not evaluated again.

    Returns
    -------
    RunCertificate
        ``certificate_kind`` :data:`FRESH_KIND`; ``held_out`` holds the bound set's empirical
        errors (it is the held-out set).
    """
    import torch

    import measurement
    from fits.sweep._train import encode_records

    if not 0.0 < delta < 1.0:
        raise InvalidParameterError(f"`delta` must be in (0, 1); got {delta!r}.")
    if n_bound < 1:
        raise InvalidParameterError(f"`n_bound` must be >= 1; got {n_bound!r}.")
    t: dict[str, float] = {}
    task, diff, base_dir, records = _run_context(spec, run)
    seed = FRESH_BOUND_SEED + run.seed
    train_keys = {(r.prompt, r.completion) for r in records}
    fresh = task.train_records(diff, n_bound, seed)
    overlap = sum((r.prompt, r.completion) in train_keys for r in fresh)
    model, tok = measurement.load_causal_lm(base_dir, dtype="float32", device="cpu")
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    prompts, comps = encode_records(tok, fresh, chat=task.chat)
    data = measurement.TokenData.from_ids(prompts, comps, pad_id=pad)
    say = print if progress else (lambda *a, **k: None)

    t0 = time.perf_counter()
    if base_result is not None:
        wanted = {
            "difficulty_label": run.difficulty_label,
            "seed": run.seed,
            "n_bound": n_bound,
            "delta": delta,
        }
        got = {k: base_result.get(k) for k in wanted}
        if got != wanted:
            raise InvalidParameterError(
                f"`base_result` must be for the same rows and delta {wanted}; got {got}."
            )
        base_cert = {k: base_result[k] for k in ("value", "risk", "method")}
        say("the base's certificate on these rows is reused from an earlier call", flush=True)
    else:
        say(f"certifying the base on {n_bound} fresh rows ...", flush=True)
        base_cert = measurement.base_model_certificate(
            model, data, delta=delta, batch_size=batch_size
        )
    t["base"] = time.perf_counter() - t0
    del model
    t0 = time.perf_counter()
    folder = Path(finetune_dir)
    if (folder / "adapter_config.json").is_file():
        model, _ = measurement.load_causal_lm(
            base_dir, adapter=folder, dtype="float32", device="cpu"
        )
    else:
        model, _ = measurement.load_causal_lm(folder, dtype="float32", device="cpu")
    say(f"certifying the fine-tune {run.run_id} on the same rows ...", flush=True)
    with torch.inference_mode():
        ft_cert = measurement.base_model_certificate(
            model, data, delta=delta, batch_size=batch_size
        )
    t["finetune"] = time.perf_counter() - t0
    return RunCertificate(
        run=run.to_dict(),
        certificate=float(ft_cert["value"]),
        certificate_kind=FRESH_KIND,
        base_certificate=float(base_cert["value"]),
        bound={
            "n": n_bound,
            "delta": delta,
            "prior_risk": float(ft_cert["risk"]),
            "base_risk": float(base_cert["risk"]),
            "method": str(ft_cert["method"]),
        },
        split={
            "prior_fraction": run.n / (run.n + n_bound),
            "split_seed": seed,
            "n_prior": run.n,
            "n_bound": n_bound,
            "prior_recipe": "the run itself",
            "prior_steps": run.steps,
            "duplicates_of_training_rows": overlap,
        },
        held_out={
            "n": n_bound,
            "seed": seed,
            "finetune": float(ft_cert["risk"]),
            "prior": float(ft_cert["risk"]),
            "base": float(base_cert["risk"]),
        },
        assumptions=(
            f"i.i.d. bound set: {n_bound} fresh draws of D_train(d) (seed {seed}), independent "
            f"of the run's {run.n} training rows ({overlap} of them repeat a training row by "
            "chance, as i.i.d. draws may)",
            "loss in [0, 1]: 0-1 sequence error (a teacher-forced greedy token differs from the "
            "reference completion; >= the exact-answer error of greedy decoding)",
            "prior provenance: Q = P = the fine-tune, trained before the bound set was drawn",
            "union cost: none (one run, chosen by a rule fixed in advance)",
            f"delta split: delta = {delta:g} for the fine-tune and for the base, each its own "
            "statement; no Monte Carlo (deterministic predictors, slack 0)"
            + (
                "; the base's certificate was computed on these same rows by an earlier call"
                if base_result is not None
                else ""
            ),
        ),
        seconds=t,
    )


def _run_context(spec: Any, run: Any) -> tuple[Any, Any, Path, list]:
    """The task, the run's difficulty, the resolved base folder and the run's training rows
    (regenerated: they are a deterministic function of the spec, difficulty, n and seed)."""
    from fits.sweep._bases import resolve_base
    from fits.sweep._tasks import make_task

    task = make_task(spec)
    diff = next(d for d in task.difficulties() if d.label == run.difficulty_label)
    return task, diff, resolve_base(spec), task.train_records(diff, run.n, run.seed)


def _init_cert_worker(threads: int) -> None:
    import os

    os.environ["OMP_NUM_THREADS"] = str(threads)
    import torch

    torch.set_num_threads(threads)


def _certify_job(sweep: str, run: dict, out_dir: str, options: dict) -> dict:
    from fits.sweep._plan import PlannedRun
    from fits.sweep._runner import load_plan

    plan = load_plan(sweep)
    planned = PlannedRun.from_dict(run)
    ft = Path(sweep) / "runs" / planned.run_id
    return certify_run(plan.spec, planned, ft, out_dir, **options).to_dict()


def certify_sweep_runs(
    sweep: str | Path,
    runs: list,
    out_dir: str | Path,
    *,
    workers: int = 1,
    progress: Callable[[int, int], None] | None = None,
    **options: Any,
) -> list[RunCertificate]:
    """:func:`certify_run` for each of ``runs`` of the sweep folder ``sweep``, into
    ``out_dir/<run_id>/``, in ``workers`` parallel 1-thread processes; in the order given.

    ``progress(done, total)`` is called once with the saved certificates counted and after
    each run certified."""
    root, out = Path(sweep), Path(out_dir)
    jobs = [(str(root), r.to_dict(), str(out / r.run_id), options) for r in runs]
    saved = {
        j[2]: c.to_dict()
        for j in jobs
        if (c := _saved_certificate(Path(j[2]), j[1], _full(j[3]))) is not None
    }
    pending = [j for j in jobs if j[2] not in saved]
    tick = progress or (lambda done, total: None)
    tick(len(saved), len(jobs))
    done = dict(saved)
    if workers <= 1 or len(pending) <= 1:
        for j in pending:
            done[j[2]] = _certify_job(*j)
            tick(len(done), len(jobs))
        return [RunCertificate.from_dict(done[j[2]]) for j in jobs]
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    with ProcessPoolExecutor(
        max_workers=min(workers, len(pending)),
        mp_context=mp.get_context("spawn"),
        initializer=_init_cert_worker,
        initargs=(1,),
    ) as pool:
        # longest first (most steps), which balances the workers
        pending.sort(key=lambda j: (-j[1]["steps"], -j[1]["n"]))
        futures = {pool.submit(_certify_job, *j): j[2] for j in pending}
        for future in as_completed(futures):
            done[futures[future]] = future.result()
            tick(len(done), len(jobs))
    return [RunCertificate.from_dict(done[j[2]]) for j in jobs]


def _full(options: dict) -> dict:
    """``options`` of :func:`certify_run` with its defaults filled in."""
    import inspect

    params = inspect.signature(certify_run).parameters
    keys = ("prior_fraction", "split_seed", "held_out", "delta")
    return {k: options.get(k, params[k].default) for k in keys}


def _saved_certificate(out: Path, run: dict, options: dict) -> RunCertificate | None:
    """The certificate saved in ``out`` if it is of this run, version and options."""
    path = out / RUN_CERT_FILE
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    same = (
        data.get("version") == RUN_CERT_VERSION
        and data.get("run") == run
        and data.get("split", {}).get("prior_fraction") == options["prior_fraction"]
        and data.get("split", {}).get("split_seed") == options["split_seed"]
        and data.get("held_out", {}).get("n") == options["held_out"]
        and data.get("bound", {}).get("delta") == options["delta"]
    )
    return RunCertificate.from_dict(data) if same else None
