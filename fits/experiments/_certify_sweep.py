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
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pacbound.exceptions import InvalidParameterError

__all__ = ["CellCertificates", "certify_cell", "split_rows"]

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
    from fits.sweep._bases import resolve_base
    from fits.sweep._tasks import make_task
    from fits.sweep._train import encode_records, train_one
    from pacbound.support import write_json

    cfg = config or measurement.PosteriorConfig()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    say = print if progress else (lambda *a, **k: None)
    t = {}
    task = make_task(spec)
    diff = next(d for d in task.difficulties() if d.label == run.difficulty_label)
    base_dir = resolve_base(spec)
    records = task.train_records(diff, run.n, run.seed)
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
        prompts, comps = encode_records(tok, recs)
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
