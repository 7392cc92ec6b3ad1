"""``tradeoff kl-inv`` and ``tradeoff bound``: evaluate kl-inverses and PAC-Bayes bounds.

Numbers may be single values or comma-separated lists, which broadcast (equal lengths, or
length 1); ``bound --csv FILE`` reads many rows at once. With ``--json`` a single result prints
one object whose ``value`` holds the number (``bound all``: an object keyed by bound name), and
many rows print a list of such objects. numpy and the bounds load inside the commands, so
``tradeoff --help`` stays fast.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import typer

from pacbound.exceptions import InputFileError, InvalidParameterError
from pacbound.support._cli import (
    make_app,
    parse_assignments,
    parse_float,
    parse_float_list,
    print_json,
    user_errors,
)

app = make_app()

BOUND_NAMES = ("mcallester", "kl", "catoni", "linear", "quad")
_COLUMNS = ("emp_risk", "kl", "n", "delta")
_FLAGS = {"emp_risk": "--emp-risk", "kl": "--kl", "n": "-n", "delta": "--delta"}


# --------------------------------------------------------------------------------------------
# kl-inv
# --------------------------------------------------------------------------------------------


@app.command("kl-inv")
def kl_inv_command(
    q: str = typer.Argument(None, metavar="q", help="Empirical risk in [0, 1] (or a comma list)."),
    c: str = typer.Argument(None, metavar="c", help="Budget >= 0 (or a comma list)."),
    lower: bool = typer.Option(False, "--lower", help="The lower inverse (inf) instead of sup."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON (key `value`)."),
) -> None:
    """Invert the binary kl: sup (or inf) of {p : kl(q||p) <= c}, conservative, to float64.

    Examples:

        tradeoff kl-inv 0.1 0.05

        tradeoff kl-inv 0.1,0.2,0.3 0.05 --json

        tradeoff kl-inv 0.9 0.05 --lower
    """
    with user_errors():
        if q is None or c is None:
            missing = "q" if q is None else "c"
            raise InvalidParameterError(
                f"`{missing}` is required: a number or a comma-separated list; got nothing."
            )
        rows = _broadcast_lists({"q": parse_float_list(q, "q"), "c": parse_float_list(c, "c")})
        import numpy as np

        from pacbound._kl_inverse import kl_inv_lower, kl_inv_upper

        solve = kl_inv_lower if lower else kl_inv_upper
        side = "lower" if lower else "upper"
        values = np.atleast_1d(solve(np.array(rows["q"]), np.array(rows["c"])))
        records = [
            {"q": qv, "c": cv, "side": side, "value": float(v)}
            for qv, cv, v in zip(rows["q"], rows["c"], values, strict=True)
        ]
        if json_out:
            print_json(records[0] if len(records) == 1 else records)
            return
        if len(records) == 1:
            r = records[0]
            name = "kl_inv_lower" if lower else "kl_inv_upper"
            typer.echo(f"{name}(q={r['q']:g}, c={r['c']:g}) = {r['value']!r}")
            return
        _print_table(
            f"kl inverse ({side})",
            ["q", "c", "value"],
            [[r["q"], r["c"], r["value"]] for r in records],
        )


# --------------------------------------------------------------------------------------------
# bound
# --------------------------------------------------------------------------------------------


@app.command("bound")
def bound_command(
    which: str = typer.Argument(
        None, metavar="BOUND", help="mcallester | kl | catoni | linear | quad | all"
    ),
    emp_risk: str = typer.Option(None, "--emp-risk", help="Empirical (Gibbs) risk in [0, 1]."),
    kl: str = typer.Option(None, "--kl", help="KL(Q||P) in nats, >= 0."),
    n: str = typer.Option(None, "-n", "--n", help="Size of the bound set, an integer >= 1."),
    delta: str = typer.Option(None, "--delta", help="Failure probability in (0, 1)."),
    csv_file: Path = typer.Option(
        None,
        "--csv",
        help="CSV with columns emp_risk, kl, n, delta (any may instead come from its flag); "
        "other columns are passed through to each result under `row`.",
    ),
    xi: str = typer.Option("2sqrt", "--xi", help="kl bound constant: 2sqrt | exact | n+1."),
    catoni_c: str = typer.Option(None, "--catoni-c", help="Catoni: a C fixed in advance."),
    grid: str = typer.Option(
        None, "--grid", help="Catoni: comma list of C values fixed in advance (union cost)."
    ),
    lambdas: str = typer.Option(
        None, "--lambdas", help="Linear bound: comma list of lambdas (default 2^0..2^29)."
    ),
    loss_range: str = typer.Option("1", "--loss-range", help="Linear bound: loss in [0, B]."),
    sub_gaussian: str = typer.Option(
        None, "--sub-gaussian", help="Linear bound: sigma of a sub-Gaussian loss."
    ),
    union: list[str] = typer.Option(
        None,
        "--union",
        help="A grid fixed in advance that a choice was made on, as LABEL=SIZE; repeatable.",
    ),
    json_out: bool = typer.Option(False, "--json", help="Print JSON (key `value`)."),
) -> None:
    """Evaluate a PAC-Bayes bound (or all of them) on one or many rows.

    Examples:

        tradeoff bound kl --emp-risk 0.02 --kl 500 -n 30000 --delta 0.025

        tradeoff bound all --emp-risk 0.02,0.1 --kl 500,5000 -n 30000,60000 --delta 0.025 --json

        tradeoff bound catoni --csv runs.csv --delta 0.05 --grid 0.5,1,2,4

        tradeoff bound kl --emp-risk 0.1 --kl 300 -n 5000 --delta 0.05 --union "sigma grid=12"
    """
    with user_errors():
        if which is None:
            raise InvalidParameterError(
                "`BOUND` is required: one of mcallester, kl, catoni, linear, quad, all; got nothing."
            )
        if which not in (*BOUND_NAMES, "all"):
            raise InvalidParameterError(
                f"`BOUND` must be one of mcallester, kl, catoni, linear, quad, all; got {which!r}."
            )
        flags = {"emp_risk": emp_risk, "kl": kl, "n": n, "delta": delta}
        rows, extra, single = _read_rows(flags, csv_file)
        knobs = _parse_knobs(catoni_c, grid, lambdas, loss_range, sub_gaussian, union)
        names = BOUND_NAMES if which == "all" else (which,)
        results = {name: _evaluate(name, rows, single, xi, knobs, csv_file) for name in names}
        _emit(results, rows, extra, single, which == "all", json_out)


def _broadcast_lists(lists: dict[str, list[float]]) -> dict[str, list[float]]:
    lengths = {len(v) for v in lists.values() if len(v) != 1}
    if len(lengths) > 1:
        listed = ", ".join(f"`{k}` {len(v)}" for k, v in lists.items())
        raise InvalidParameterError(
            f"comma lists must have equal lengths (or length 1); got lengths {listed}."
        )
    size = lengths.pop() if lengths else 1
    return {k: v * size if len(v) == 1 else v for k, v in lists.items()}


def _read_rows(
    flags: dict[str, str | None], csv_file: Path | None
) -> tuple[dict[str, list[float]], list[dict[str, str]], bool]:
    """Rows of the four inputs (broadcast), pass-through columns, and whether it is one row."""
    if csv_file is None:
        for col in _COLUMNS:
            if flags[col] is None:
                raise InvalidParameterError(
                    f"`{_FLAGS[col]}` is required (or --csv FILE); got nothing."
                )
        lists = {col: parse_float_list(flags[col], col) for col in _COLUMNS}
        rows = _broadcast_lists(lists)
        single = all(len(v) == 1 for v in lists.values())
        return rows, [], single
    return (*_read_csv(csv_file, flags), False)


def _read_csv(
    path: Path, flags: dict[str, str | None]
) -> tuple[dict[str, list[float]], list[dict[str, str]]]:
    try:
        return _read_csv_rows(path, flags)
    except UnicodeDecodeError as exc:
        raise InputFileError(
            f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8."
        ) from None
    except csv.Error as exc:
        raise InputFileError(f"{path}: not a valid CSV file ({exc}).") from None


def _read_csv_rows(
    path: Path, flags: dict[str, str | None]
) -> tuple[dict[str, list[float]], list[dict[str, str]]]:
    # utf-8-sig: a byte-order mark (Excel's "CSV UTF-8") is not part of the first column name
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        header = [h.strip() for h in (reader.fieldnames or [])]
        if not header:
            raise InputFileError(
                f"{path}: empty file; expected a header with {', '.join(_COLUMNS)}."
            )
        repeated = sorted({h for h in header if header.count(h) > 1})
        if repeated:
            raise InputFileError(
                f"{path}: column names must be unique; got {', '.join(map(repr, repeated))} "
                "more than once."
            )
        reader.fieldnames = header
        fallback: dict[str, float] = {}
        for col in _COLUMNS:
            if col in header:
                continue
            if flags[col] is None:
                raise InputFileError(
                    f"{path}: missing column `{col}` (columns: {', '.join(header)}); "
                    f"add it or pass {_FLAGS[col]}."
                )
            values = parse_float_list(flags[col], col)
            if len(values) != 1:
                raise InvalidParameterError(
                    f"`{_FLAGS[col]}` must be a single number with --csv; got {flags[col]!r}."
                )
            fallback[col] = values[0]
        rows: dict[str, list[float]] = {col: [] for col in _COLUMNS}
        extra: list[dict[str, str]] = []
        for line, record in enumerate(reader, start=2):
            for col in _COLUMNS:
                if col in fallback:
                    rows[col].append(fallback[col])
                    continue
                raw = (record.get(col) or "").strip()
                try:
                    value = float(raw)
                    if math.isnan(value):
                        raise ValueError(raw)
                    rows[col].append(value)
                except ValueError:
                    raise InputFileError(
                        f"{path}: row {line}, field `{col}`: must be a number; got {raw!r}."
                    ) from None
            extra.append({k: v for k, v in record.items() if k not in _COLUMNS and k})
    if not rows["kl"]:
        raise InputFileError(f"{path}: no data rows.")
    return rows, extra


def _parse_knobs(
    catoni_c: str | None,
    grid: str | None,
    lambdas: str | None,
    loss_range: str,
    sub_gaussian: str | None,
    union: list[str] | None,
) -> dict[str, Any]:
    return {
        "C": parse_float(catoni_c, "--catoni-c") if catoni_c is not None else None,
        "grid": parse_float_list(grid, "--grid") if grid is not None else None,
        "lambdas": parse_float_list(lambdas, "--lambdas") if lambdas is not None else None,
        "loss_range": parse_float(loss_range, "--loss-range"),
        "sub_gaussian": parse_float(sub_gaussian, "--sub-gaussian")
        if sub_gaussian is not None
        else None,
        "union": parse_assignments(
            union or [],
            "--union",
            form="LABEL=SIZE with an integer SIZE >= 1",
            convert=_grid_size,
            split_last=True,
        )
        or None,
    }


def _grid_size(text: str) -> int:
    size = int(text)
    if size < 1:
        raise ValueError(text)
    return size


def _evaluate(
    name: str,
    rows: dict[str, list[float]],
    single: bool,
    xi: str,
    knobs: dict[str, Any],
    csv_file: Path | None,
) -> Any:
    import numpy as np

    args = [rows[col][0] if single else np.array(rows[col]) for col in _COLUMNS]
    try:
        return _bound(name, args, xi, knobs)
    except InvalidParameterError as exc:
        if csv_file is None:
            raise
        # the bound's own check failed on some row: find the first such row, to name it
        for i in range(len(rows["kl"])):
            try:
                _bound(name, [rows[col][i] for col in _COLUMNS], xi, knobs)
            except InvalidParameterError as row_exc:
                raise InputFileError(f"{csv_file}: row {i + 2}: {row_exc}") from None
        raise InputFileError(f"{csv_file}: {exc}") from None


def _bound(name: str, args: list[Any], xi: str, knobs: dict[str, Any]) -> Any:
    from pacbound._bounds import f_quad, kl_bound, mcallester
    from pacbound._catoni import catoni, linear_lambda

    union = knobs["union"]
    if name == "mcallester":
        return mcallester(*args, union=union)
    if name == "kl":
        return kl_bound(*args, xi=xi, union=union)
    if name == "catoni":
        return catoni(*args, C=knobs["C"], grid=knobs["grid"], union=union)
    if name == "linear":
        return linear_lambda(
            *args,
            lambdas=knobs["lambdas"],
            loss_range=knobs["loss_range"],
            sub_gaussian=knobs["sub_gaussian"],
            union=union,
        )
    return f_quad(*args, union=union)


def _emit(
    results: dict[str, Any],
    rows: dict[str, list[float]],
    extra: list[dict[str, str]],
    single: bool,
    all_bounds: bool,
    json_out: bool,
) -> None:
    if single:
        per_row = [{name: r.to_dict() for name, r in results.items()}]
    else:
        columns = {name: r.records() for name, r in results.items()}
        size = len(rows["kl"])
        per_row = [{name: columns[name][i] for name in results} for i in range(size)]
        for i, row in enumerate(per_row):
            if extra and extra[i]:
                for record in row.values():
                    record["row"] = extra[i]
    if json_out:
        objects = per_row if all_bounds else [next(iter(r.values())) for r in per_row]
        print_json(objects[0] if single else objects)
        return
    if single and not all_bounds:
        typer.echo(str(next(iter(results.values()))))
        return
    extra_cols = sorted({k for e in extra for k in e}) if extra else []
    header = [*extra_cols, *_COLUMNS, *results]
    body = []
    for i, row in enumerate(per_row):
        first = next(iter(row.values()))
        cells = [extra[i].get(k, "") for k in extra_cols] if extra else []
        cells += [first[col] for col in _COLUMNS]
        cells += [row[name]["value"] for name in results]
        body.append(cells)
    _print_table("PAC-Bayes bounds (values above 1 are vacuous)", header, body, len(extra_cols))


def _print_table(title: str, header: list[str], body: list[list[Any]], left: int = 0) -> None:
    """A rich table; the first ``left`` columns are labels, the rest numbers."""
    from rich.console import Console
    from rich.table import Table

    rendered = [[_cell(v) for v in cells] for cells in body]
    widths = [max([len(h), *(len(r[i]) for r in rendered)]) for i, h in enumerate(header)]
    table = Table(title=title)
    for i, col in enumerate(header):
        table.add_column(col, justify="left" if i < left else "right", no_wrap=True)
    for cells in rendered:
        table.add_row(*cells)
    console = Console()
    if not console.is_terminal:  # piped output: as wide as the table needs
        console = Console(width=max(80, sum(widths) + 3 * len(widths) + 1))
    console.print(table)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.10g}"
    if value is None:
        return "nan"
    return str(value)
