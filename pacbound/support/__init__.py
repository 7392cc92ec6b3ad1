"""Shared plumbing of the toolkit: validation, file and table I/O, CLI helpers, versions, progress.

This is the one sub-package that :mod:`measurement` and :mod:`fits` import from another
package besides the public APIs (the role ``scipy._lib`` plays for scipy's sub-packages). Its
API is small and stable within 0.x; everything here is plumbing, not science.

Validation (one error template: the argument in backticks, the constraint, the value):
    :func:`check_choice`, :func:`check_in_interval`, :func:`check_positive_int`,
    :func:`check_integer_array`, :func:`check_broadcast`, :func:`as_float_array`.
Files (nothing half-written: temporary file or folder, then an atomic rename):
    :func:`atomic_path`, :func:`atomic_dir`, :func:`atomic_write_text`, :func:`write_json`,
    :func:`to_jsonable`, :func:`read_jsonl_records`, :func:`chmod_like_new`.
Outputs that cannot destroy inputs: :func:`check_output_path` (refuse an output that is,
    contains or is inside an input, or a folder the toolkit did not write),
    :func:`mark_output_dir`, :data:`OUTPUT_MARKER`.
Tables (one reader and one writer; the suffix picks the format, one of
    :data:`TABLE_SUFFIXES` = .csv, .tsv, .jsonl, .json, .parquet, .pq):
    :func:`read_table`, :func:`write_table`, :func:`table_format`.
Command line (one line on stderr and exit status 2 for user errors):
    :func:`make_app`, :func:`user_errors`, :func:`print_json`, :func:`print_result`,
    :func:`warnings_to_stderr`, :func:`parse_float`, :func:`parse_float_list`,
    :func:`parse_int_list`, :func:`parse_floats`, :func:`parse_assignments`, :func:`split_names`, :func:`reflow_help`.
This installation: :func:`installed_version`, :func:`library_versions` (what a result
    records: this toolkit, Python and the named distributions), :func:`environment_report`.
Long jobs, drawn on stderr: :func:`progress_bar` (work units), :func:`byte_progress` (bytes and
    MB/s), :class:`Progress` (the stage of a fit). Packages: :func:`lazy_exports`.
Configs with constraints declared as data: :class:`Config`, :func:`config_field`,
    :class:`Interval`, :func:`validate_config`, :func:`config_option`, :func:`config_help`.
"""

from __future__ import annotations

from pacbound.support._lazy import lazy_exports

_EXPORTS = {
    **dict.fromkeys(
        [
            "as_float_array",
            "check_broadcast",
            "check_choice",
            "check_in_interval",
            "check_integer_array",
            "check_positive_int",
        ],
        "pacbound.support._validation",
    ),
    **dict.fromkeys(
        [
            "atomic_dir",
            "atomic_path",
            "atomic_write_text",
            "chmod_like_new",
            "read_jsonl_records",
            "to_jsonable",
            "write_json",
        ],
        "pacbound.support._io",
    ),
    **dict.fromkeys(
        ["OUTPUT_MARKER", "check_output_path", "mark_output_dir"],
        "pacbound.support._outputs",
    ),
    **dict.fromkeys(
        ["TABLE_SUFFIXES", "read_table", "table_format", "write_table"],
        "pacbound.support._tables",
    ),
    **dict.fromkeys(
        [
            "EXIT_USAGE",
            "error_object",
            "make_app",
            "parse_assignments",
            "parse_float",
            "parse_float_list",
            "parse_int_list",
            "parse_floats",
            "print_json",
            "print_result",
            "reflow_help",
            "split_names",
            "user_errors",
            "warnings_to_stderr",
        ],
        "pacbound.support._cli",
    ),
    **dict.fromkeys(
        ["EnvironmentReport", "environment_report", "installed_version", "library_versions"],
        "pacbound.support._environment",
    ),
    **dict.fromkeys(["Progress", "byte_progress", "progress_bar"], "pacbound.support._progress"),
    "lazy_exports": "pacbound.support._lazy",
    **dict.fromkeys(
        [
            "Config",
            "Interval",
            "check_field",
            "config_field",
            "config_from_dict",
            "config_help",
            "config_option",
            "config_to_dict",
            "describe_constraint",
            "validate_config",
        ],
        "pacbound.support._config",
    ),
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
