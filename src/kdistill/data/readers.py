"""Read the user's own files (and GLUE's TSVs) into rows: CSV, TSV, JSONL and JSON arrays.

Each reader returns ``(rows, unit)``; ``unit`` is ``"line"`` or ``"record"`` (a JSON array's element), used in
messages. A row is :class:`kdistill.data.labels.Row`: its line/record number, text cells and raw label cell. Every
problem with a file (its format, a missing column, a bad quote, a duplicate JSON key) is raised as a one-line
:class:`~kdistill.errors.DataError`. Turning rows into a validated split is :mod:`kdistill.data.loading`'s job.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kdistill.data.labels import Row as _Row, as_number, short_repr
from kdistill.errors import DataError

__all__ = ["read_file"]


_FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json"}


# --------------------------------------------------------------------------------------------------
# Readers: each returns (rows, unit) where unit is "line" or "record" (used in messages).
# --------------------------------------------------------------------------------------------------


def _read_delimited(
    path: Path,
    *,
    delimiter: str,
    quoting: int,
    text_columns: Sequence[str],
    label_column: str,
    fixed_columns: Sequence[str] | None,
    hint: str,
) -> list[_Row]:
    """Read a CSV/TSV file; columns are matched by header name (or by ``fixed_columns`` if headerless)."""
    kind = "tab" if delimiter == "\t" else "comma"
    rows: list[_Row] = []
    reader = None
    try:
        with path.open("r", encoding="utf-8-sig", newline="") as fh:
            reader = csv.reader(fh, delimiter=delimiter, quoting=quoting)
            first_row: list[str] | None = None
            if fixed_columns is None:
                header = None
                for candidate in reader:
                    if candidate and any(c.strip() for c in candidate):
                        header = [c.strip() for c in candidate]
                        break
                if header is None:
                    raise DataError(f"{path} is empty (no header row); {hint}")
            else:
                header = list(fixed_columns)
            wanted = [*text_columns, label_column]
            missing = [c for c in wanted if c not in header]
            if missing and fixed_columns is None and all(str(c).isdigit() for c in wanted):
                # 0-based column indices: a headerless file, its first line is data
                first_row, first_line = candidate, reader.line_num
                idx = [int(c) for c in wanted]
                if max(idx) >= len(header):
                    raise DataError(f"{path}: column index {max(idx)} is out of range; its first line has "
                                    f"{len(header)} {kind}-separated fields (indices 0..{len(header) - 1})")
                header = [str(i) for i in range(len(header))]
                missing = []
            if missing:
                looks_headerless = not any(c in header for c in wanted) and any(
                    as_number(h) is not None or len(h) > 40 for h in header)
                advice = (f"it seems to have no header row (its first line looks like data): pass 0-based column "
                          f"indices, e.g. --text-columns {min(1, len(header) - 1)} --label-column 0"
                          if looks_headerless else hint)
                raise DataError(
                    f"{path} is missing column(s) {missing}: found {short_repr(header, 120)}, expected text column(s) "
                    f"{list(text_columns)} and label column {label_column!r}; {advice}"
                )
            dupes = sorted({c for c in wanted if header.count(c) > 1})
            if dupes:
                raise DataError(f"{path}: the header names column(s) {dupes} more than once ({short_repr(header, 120)}); "
                                "rename the duplicates so that each column has its own name")
            text_idx = [header.index(c) for c in text_columns]
            label_idx = header.index(label_column)
            width = len(header)
            if first_row is not None:
                rows.append((first_line, [first_row[i] for i in text_idx], first_row[label_idx]))
            for row in reader:
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue  # blank line (e.g. the trailing newline)
                if len(row) != width:
                    raise DataError(
                        f"{path} line {reader.line_num}: expected {width} {kind}-separated fields {header} "
                        f"but found {len(row)}; fix or remove that line"
                    )
                rows.append((reader.line_num, [row[i] for i in text_idx], row[label_idx]))
    except csv.Error as exc:
        line = reader.line_num if reader is not None else 0
        raise DataError(f"{path} line {line}: cannot parse ({exc}); fix or remove that line") from exc
    except UnicodeDecodeError as exc:
        raise DataError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start}); re-save it as UTF-8") from exc
    return rows


class _DuplicateKey(ValueError):
    pass


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict:
    keys = [k for k, _ in pairs]
    dupes = sorted({k for k in keys if keys.count(k) > 1})
    if dupes:
        raise _DuplicateKey(f"key(s) {dupes} appear more than once in one object")
    return dict(pairs)


def _json_records(path: Path, fmt: str) -> tuple[str, list[tuple[int, Any]]]:
    """Parse a JSON Lines file (or, for ``.json``, a JSON array) into ``(unit, [(number, object)])``.

    Raises:
        DataError: invalid JSON, or an object with a duplicate key (JSON keeps the last silently), naming the line.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start}); re-save it as UTF-8") from exc
    if fmt == "json" and text.lstrip().startswith("["):
        try:
            records = json.loads(text, object_pairs_hook=_no_duplicate_keys)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path} line {exc.lineno}: invalid JSON ({exc.msg}); fix the file") from exc
        except _DuplicateKey as exc:
            raise DataError(f"{path}: {exc}; give each key once") from exc
        return "record", list(enumerate(records, start=1))
    out = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            out.append((number, json.loads(line, object_pairs_hook=_no_duplicate_keys)))
        except _DuplicateKey as exc:
            raise DataError(f"{path} line {number}: {exc}; give each key once") from exc
        except json.JSONDecodeError as exc:
            raise DataError(
                f"{path} line {number}: invalid JSON ({exc.msg}); write one JSON object per line"
            ) from exc
    return "line", out


def _read_json(
    path: Path, fmt: str, *, text_columns: Sequence[str], label_column: str, hint: str
) -> tuple[list[_Row], str]:
    rows: list[_Row] = []
    unit, records = _json_records(path, fmt)
    for number, obj in records:
        if not isinstance(obj, dict):
            raise DataError(
                f"{path} {unit} {number}: expected a JSON object with keys {[*text_columns, label_column]} "
                f"but found {type(obj).__name__}; fix that {unit}"
            )
        missing = [c for c in (*text_columns, label_column) if c not in obj]
        if missing:
            raise DataError(
                f"{path} {unit} {number} is missing key(s) {missing}: found {list(obj)}, expected text column(s) "
                f"{list(text_columns)} and label column {label_column!r}; {hint}"
            )
        rows.append((number, [obj[c] for c in text_columns], obj[label_column]))
    return rows, unit


def read_file(
    path: Path,
    *,
    text_columns: Sequence[str],
    label_column: str,
    fixed_columns: Sequence[str] | None = None,
    glue: bool = False,
    hint: str,
) -> tuple[list[_Row], str]:
    """Dispatch on the extension (GLUE files are always TSV read without quote handling).

    Returns ``(rows, unit)``; ``unit`` is ``"line"`` or ``"record"`` (JSON array), used in messages.
    """
    if glue:
        fmt = "tsv"
    else:
        fmt = _FORMATS.get(path.suffix.lower())
        if fmt is None:
            raise DataError(
                f"cannot tell the format of {path} from its extension {path.suffix!r}; "
                f"name it .csv, .tsv or .jsonl"
            )
    if fmt in ("jsonl", "json"):
        return _read_json(path, fmt, text_columns=text_columns, label_column=label_column, hint=hint)
    if fmt == "tsv":
        # TSV (and all GLUE files): no quote handling, since GLUE sentences contain unbalanced quotes.
        rows = _read_delimited(
            path, delimiter="\t", quoting=csv.QUOTE_NONE, text_columns=text_columns,
            label_column=label_column, fixed_columns=fixed_columns, hint=hint,
        )
    else:
        rows = _read_delimited(
            path, delimiter=",", quoting=csv.QUOTE_MINIMAL, text_columns=text_columns,
            label_column=label_column, fixed_columns=fixed_columns, hint=hint,
        )
    return rows, "line"
