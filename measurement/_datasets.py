"""SFT datasets: read prompt/completion (or chat) examples from a table file (JSON Lines, JSON,
CSV, TSV, Parquet: :func:`pacbound.support.read_table`) or a Hugging Face ``datasets`` folder,
with clear errors that name the file and the row.

Every example becomes a pair (prompt, completion). Chat rows (a ``messages`` list of
``{"role", "content"}``) are rendered with the tokenizer's chat template: the prompt is every
turn but the last, rendered with ``add_generation_prompt=True``; the completion is the rest of
the fully rendered conversation (the last assistant turn and its end-of-turn marker), so
``prompt + completion`` is exactly the text the model was trained on.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from measurement.exceptions import DatasetError
from pacbound.exceptions import InvalidParameterError
from pacbound.support import TABLE_SUFFIXES, read_table, to_jsonable, write_table

__all__ = ["ExampleSet", "as_example_set", "load_examples", "parse_column_mapping", "write_table"]

#: Canonical fields a column mapping may rename.
CANONICAL_FIELDS = ("prompt", "completion", "messages", "answer", "example_id")


@dataclass(frozen=True, eq=False)
class ExampleSet:
    """Examples ready for scoring: the file's rows plus their canonical (prompt, completion).

    Attributes
    ----------
    source : str
        The file or folder the examples came from.
    table : pandas.DataFrame
        The rows as read (every original column), with ``example_id`` as the first column,
        plus any columns added since (difficulty scores, bins).
    prompts, completions : tuple of str
        The text before and the text after the scored boundary, one per row.
    answers : tuple of (str or None), or None
        Reference final answers from the ``answer`` column, when the dataset has one.
    kind : {"prompt-completion", "chat"}
        How the examples were given.
    """

    source: str
    table: pd.DataFrame
    prompts: tuple[str, ...]
    completions: tuple[str, ...]
    answers: tuple[str | None, ...] | None = None
    kind: str = "prompt-completion"
    columns: Mapping[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.prompts)

    def __str__(self) -> str:
        return (
            f"ExampleSet({len(self)} {self.kind} examples from {self.source}; "
            f"columns: {', '.join(map(str, self.table.columns))})"
        )

    @property
    def example_ids(self) -> list[Any]:
        """The ``example_id`` of every row, in order."""
        return self.table["example_id"].tolist()

    def with_columns(self, **columns: Sequence[Any]) -> ExampleSet:
        """Return a copy with columns added (or replaced) in :attr:`table`."""
        table = self.table.copy()
        for name, values in columns.items():
            if len(values) != len(self):
                raise InvalidParameterError(
                    f"`{name}` must have one value per example ({len(self)}); got {len(values)}."
                )
            table[name] = list(values)
        return ExampleSet(
            self.source,
            table,
            self.prompts,
            self.completions,
            self.answers,
            self.kind,
            self.columns,
        )

    def subset(self, positions: Sequence[int]) -> ExampleSet:
        """Return the examples at the given row positions, in that order."""
        idx = [int(i) for i in positions]
        return ExampleSet(
            self.source,
            self.table.iloc[idx].reset_index(drop=True),
            tuple(self.prompts[i] for i in idx),
            tuple(self.completions[i] for i in idx),
            None if self.answers is None else tuple(self.answers[i] for i in idx),
            self.kind,
            self.columns,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary (not the rows)."""
        return {
            "source": self.source,
            "kind": self.kind,
            "n_examples": len(self),
            "columns": [str(c) for c in self.table.columns],
            "column_mapping": dict(self.columns),
        }


def parse_column_mapping(text: str | Mapping[str, str] | None) -> dict[str, str]:
    """Parse ``"prompt=question,completion=solution"`` into ``{"prompt": "question", ...}``.

    Keys are canonical field names (prompt, completion, messages, answer, example_id); values
    are the dataset's own column names.
    """
    if text is None:
        return {}
    if isinstance(text, Mapping):
        items = list(text.items())
    else:
        items = []
        for part in str(text).split(","):
            if not part.strip():
                continue
            if "=" not in part:
                raise InvalidParameterError(
                    f"`columns` must be a comma-separated list of field=column pairs; got {part!r}."
                )
            key, value = part.split("=", 1)
            items.append((key.strip(), value.strip()))
    mapping: dict[str, str] = {}
    for key, value in items:
        if key not in CANONICAL_FIELDS:
            allowed = ", ".join(CANONICAL_FIELDS)
            raise InvalidParameterError(f"`columns` keys must be one of {allowed}; got {key!r}.")
        if not value:
            raise InvalidParameterError(f"`columns` must name a column for {key!r}; got ''.")
        mapping[key] = value
    return mapping


def load_examples(
    path: str | Path,
    *,
    columns: Mapping[str, str] | str | None = None,
    tokenizer: Any = None,
    split: str | None = None,
) -> ExampleSet:
    """Read an SFT dataset and return its examples as (prompt, completion) pairs.

    Parameters
    ----------
    path : str or Path
        A ``.jsonl``/``.json``, ``.csv`` or ``.parquet`` file, or a folder written by
        ``datasets.Dataset.save_to_disk`` (a ``DatasetDict`` folder needs ``split``).
    columns : mapping or str, optional
        Canonical field -> dataset column, e.g. ``{"prompt": "question", "completion":
        "solution"}`` or the string ``"prompt=question,completion=solution"``.
    tokenizer : transformers tokenizer, optional
        Needed for chat (``messages``) datasets, whose turns are rendered with its chat template.
    split : str, optional
        The split to read from a saved ``DatasetDict``.

    Returns
    -------
    ExampleSet

    Raises
    ------
    DatasetError
        The file is missing, unreadable or malformed (bad JSON names the line), a needed column
        is missing, or a row has an empty or non-text prompt/completion (naming the row).
    """
    source = Path(path)
    mapping = parse_column_mapping(columns)
    frame = _read_frame(source, split)
    if frame.empty:
        raise DatasetError(f"{source}: the dataset has no rows.")
    for key, col in mapping.items():
        if col not in frame.columns:
            raise DatasetError(
                f"{source}: column {col!r} (mapped to {key!r}) is missing; "
                f"the file has columns {_listing(frame.columns)}."
            )
    name = {key: mapping.get(key, key) for key in CANONICAL_FIELDS}
    frame = _with_example_id(frame, source, name["example_id"], "example_id" in mapping)
    if _is_chat(frame, mapping, name):
        prompts, completions = _render_chats(frame, source, name["messages"], tokenizer)
        kind = "chat"
    else:
        prompts, completions = _pairs(frame, source, name["prompt"], name["completion"])
        kind = "prompt-completion"
    answers = None
    if name["answer"] in frame.columns:
        answers = tuple(_answer_text(v) for v in frame[name["answer"]])
    return ExampleSet(str(source), frame, prompts, completions, answers, kind, mapping)


def as_example_set(
    data: ExampleSet | str | Path, *, columns: Any = None, tokenizer: Any = None
) -> ExampleSet:
    """``data`` itself when it is an :class:`ExampleSet`, else :func:`load_examples` of it."""
    if isinstance(data, ExampleSet):
        return data
    return load_examples(data, columns=columns, tokenizer=tokenizer)


# ---------------------------------------------------------------------------------------------
# reading


def _read_frame(source: Path, split: str | None) -> pd.DataFrame:
    """The rows of a table file (:func:`pacbound.support.read_table`, cells kept as text) or of
    a saved ``datasets`` folder."""
    if not source.exists():
        raise DatasetError(f"{source}: no such file or folder.")
    if source.is_dir():
        return _read_hf_folder(source, split)
    suffix = source.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise DatasetError(
            f"{source}: the dataset format must be one of {', '.join(TABLE_SUFFIXES)} or a "
            f"saved `datasets` folder; got suffix {suffix or '(none)'!r}."
        )
    return read_table(source, text=True, error=DatasetError, what="dataset")


def _read_hf_folder(source: Path, split: str | None) -> pd.DataFrame:
    import datasets

    try:
        loaded = datasets.load_from_disk(str(source))
    except (FileNotFoundError, ValueError) as exc:
        raise DatasetError(
            f"{source}: not a dataset folder saved with `datasets.save_to_disk` ({exc})."
        ) from exc
    if isinstance(loaded, datasets.DatasetDict):
        names = sorted(loaded.keys())
        if split is None:
            if len(names) != 1:
                raise InvalidParameterError(
                    f"`split` must be one of {_listing(names)} for {source}; got None."
                )
            split = names[0]
        if split not in loaded:
            raise InvalidParameterError(
                f"`split` must be one of {_listing(names)} for {source}; got {split!r}."
            )
        loaded = loaded[split]
    return loaded.to_pandas()


def _with_example_id(frame: pd.DataFrame, source: Path, id_col: str, mapped: bool) -> pd.DataFrame:
    frame = frame.reset_index(drop=True)
    if id_col in frame.columns:
        ids = frame[id_col]
    elif "id" in frame.columns and not mapped:
        ids = frame["id"]
    else:
        ids = pd.Series(np.arange(len(frame)), dtype="int64")
    missing = ids.isna()
    if missing.any():
        raise DatasetError(f"{source}: row {int(np.argmax(missing.to_numpy()))} has no example id.")
    duplicated = ids.duplicated()
    if duplicated.any():
        row = int(np.argmax(duplicated.to_numpy()))
        raise DatasetError(
            f"{source}: example ids must be unique; row {row} repeats id {to_jsonable(ids.iloc[row])!r}."
        )
    out = frame.drop(columns=["example_id"], errors="ignore")
    out.insert(0, "example_id", ids.to_numpy())
    return out


def _is_chat(frame: pd.DataFrame, mapping: Mapping[str, str], name: Mapping[str, str]) -> bool:
    """Chat when `messages` is mapped explicitly, or present with no prompt/completion columns."""
    if "messages" in mapping:
        return True
    if "prompt" in mapping or "completion" in mapping:
        return False
    has_pair = name["prompt"] in frame.columns or name["completion"] in frame.columns
    return not has_pair and name["messages"] in frame.columns


def _pairs(
    frame: pd.DataFrame, source: Path, prompt_col: str, completion_col: str
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    for col in (prompt_col, completion_col):
        if col not in frame.columns:
            raise DatasetError(
                f"{source}: column {col!r} is missing; the file has columns "
                f"{_listing(frame.columns)} (give a column mapping, e.g. "
                f"prompt=question,completion=answer, or a chat `messages` column)."
            )
    prompts = tuple(
        _text(v, source, i, prompt_col, allow_empty=True) for i, v in enumerate(frame[prompt_col])
    )
    completions = tuple(
        _text(v, source, i, completion_col, allow_empty=False)
        for i, v in enumerate(frame[completion_col])
    )
    return prompts, completions


def _render_chats(
    frame: pd.DataFrame, source: Path, messages_col: str, tokenizer: Any
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    if messages_col not in frame.columns:
        raise DatasetError(
            f"{source}: column {messages_col!r} is missing; the file has columns "
            f"{_listing(frame.columns)}."
        )
    if tokenizer is None or not getattr(tokenizer, "chat_template", None):
        raise InvalidParameterError(
            f"`tokenizer` must have a chat template to render the `{messages_col}` column of "
            f"{source}; got {'None' if tokenizer is None else 'a tokenizer without one'}."
        )
    prompts, completions = [], []
    for row, raw in enumerate(frame[messages_col]):
        turns = _turns(raw, source, row, messages_col)
        prompt = tokenizer.apply_chat_template(
            turns[:-1], tokenize=False, add_generation_prompt=True
        )
        whole = tokenizer.apply_chat_template(turns, tokenize=False)
        completion = whole[len(prompt) :] if whole.startswith(prompt) else turns[-1]["content"]
        prompts.append(prompt)
        completions.append(completion)
    return tuple(prompts), tuple(completions)


def _turns(raw: Any, source: Path, row: int, col: str) -> list[dict[str, str]]:
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError:
            raise DatasetError(
                f"{source}: row {row}, field {col!r} must be a list of messages; got a string "
                "that is not JSON."
            ) from None
    if isinstance(raw, np.ndarray):
        raw = raw.tolist()
    if not isinstance(raw, list) or len(raw) < 2:
        raise DatasetError(
            f"{source}: row {row}, field {col!r} must be a list of at least two messages "
            f"(ending with the assistant's); got {_short(raw)}."
        )
    turns = []
    for k, msg in enumerate(raw):
        if not isinstance(msg, Mapping) or "role" not in msg or "content" not in msg:
            raise DatasetError(
                f"{source}: row {row}, message {k} must have `role` and `content`; got "
                f"{_short(msg)}."
            )
        turns.append(
            {
                "role": str(msg["role"]),
                "content": _text(msg["content"], source, row, f"{col}[{k}].content", True),
            }
        )
    if turns[-1]["role"] != "assistant":
        raise DatasetError(
            f"{source}: row {row}, the last message must have role 'assistant'; got "
            f"{turns[-1]['role']!r}."
        )
    if not turns[-1]["content"].strip():
        raise DatasetError(f"{source}: row {row}, the last assistant message is empty.")
    return turns


def _text(value: Any, source: Path, row: int, col: str, allow_empty: bool) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        value = ""
    if not isinstance(value, str):
        raise DatasetError(
            f"{source}: row {row}, field {col!r} must be text; got {type(value).__name__} "
            f"{_short(value)}."
        )
    if not allow_empty and not value.strip():
        raise DatasetError(f"{source}: row {row}, field {col!r} is empty.")
    return value


def _answer_text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value).strip()
    return text or None


def _listing(names: Any) -> str:
    return "[" + ", ".join(repr(str(n)) for n in names) + "]"


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
