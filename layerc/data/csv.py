"""CSV tables: reading, column selection and number parsing with located errors."""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import DataError

MISSING = {"", "na", "n/a", "nan", "null", "none", "?"}


@dataclass
class Table:
    """A CSV file's cells as strings, with the file line of each row for error messages."""

    path: Path
    names: list[str] | None
    rows: list[list[str]]
    lines: list[int]

    @property
    def width(self) -> int:
        return len(self.names) if self.names is not None else (len(self.rows[0]) if self.rows else 0)

    def name(self, col: int) -> str:
        return repr(self.names[col]) if self.names else f"{col}"


def read_table(path: Path, header: bool = True, delimiter: str = ",", limit: int | None = None) -> Table:
    """Every non-blank row of a CSV file (the first `limit` data rows); all must have the same number of cells."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            return parse_table(f, path, header, delimiter, limit)
    except UnicodeDecodeError:
        raise DataError(f"{path}: is not UTF-8 text") from None


def parse_table(lines, path, header: bool = True, delimiter: str = ",", limit: int | None = None) -> Table:
    """`read_table` for CSV text given as lines (standard input), `path` naming it in errors."""
    stop = None if limit is None else limit + bool(header)
    try:
        reader = csv.reader(lines, delimiter=delimiter)
        rows, lines = [], []
        for row in reader:
            if row and any(c.strip() for c in row):
                rows.append(row)
                lines.append(reader.line_num)
                if len(rows) == stop:
                    break
    except csv.Error as e:
        raise DataError(f"{path}: malformed CSV ({e})") from None
    names = None
    if header:
        if not rows:
            raise DataError(f"{path}: is empty (a header row was expected)")
        names = [c.strip() for c in rows.pop(0)]
        lines.pop(0)
    if not rows:
        raise DataError(f"{path}: has no data rows")
    table = Table(Path(path), names, rows, lines)
    width = table.width
    for row, line in zip(rows, lines):
        if len(row) != width:
            raise DataError(f"{path}: line {line} has {len(row)} cells, expected {width}"
                            + (" (as in the header)" if names else " (as in the first row)"))
    return table


def column_index(table: Table, col, what: str) -> int:
    """The index of a column given by header name or by 0-based index."""
    if isinstance(col, int):
        if col >= table.width:
            raise DataError(f"{table.path}: {what} column {col} does not exist (the file has {table.width} columns)")
        return col
    if table.names is None:
        raise DataError(f"{table.path}: {what} column {col!r} is named but the file has no header "
                        "(give its 0-based index, or header: true)")
    if col not in table.names:
        raise DataError(f"{table.path}: {what} column {col!r} is not in the header "
                        f"(columns: {', '.join(table.names)})")
    return table.names.index(col)


def numbers(table: Table, cols: list[int], missing: str = "error", fill_value: float = 0.0):
    """The columns as float64, and which rows are complete.

    Missing cells (empty, NA, NaN, ?) raise DataError, fill with `fill_value`, or leave
    their row out of the returned mask, by `missing` (error|fill|drop).

    Shapes: -> (rows, len(cols)) float64, (rows,) bool.
    """
    cells = [[row[c] for c in cols] for row in table.rows]
    try:
        values = np.array(cells, dtype=np.float64).reshape(len(cells), len(cols))
        absent = np.isnan(values)
    except ValueError:
        values, absent = _slow_numbers(table, cells, cols)
    if np.isinf(values).any():
        r, c = np.argwhere(np.isinf(values))[0]
        raise DataError(f"{table.path}: line {table.lines[r]}, column {table.name(cols[c])}: "
                        f"{cells[r][c].strip()!r} is not a finite number")
    complete = ~absent.any(axis=1)
    if absent.any():
        if missing == "error":
            r, c = np.argwhere(absent)[0]
            raise DataError(f"{table.path}: line {table.lines[r]}, column {table.name(cols[c])}: missing value "
                            "(set `missing: drop` or `missing: fill` to accept missing values)")
        if missing == "fill":
            values[absent] = fill_value
            complete[:] = True
    return values, complete


def _slow_numbers(table: Table, cells, cols):
    values = np.empty((len(cells), len(cols)))
    absent = np.zeros(values.shape, bool)
    for r, row in enumerate(cells):
        for c, cell in enumerate(row):
            text = cell.strip()
            if text.lower() in MISSING:
                absent[r, c], values[r, c] = True, np.nan
                continue
            try:
                values[r, c] = float(text)
            except ValueError:
                raise DataError(f"{table.path}: line {table.lines[r]}, column {table.name(cols[c])}: "
                                f"{text!r} is not a number") from None
    return values, absent


def parse_rows(raw, delimiter: str) -> list[list[str]]:
    """Rows given as CSV lines or as sequences of cells, as lists of strings."""
    rows = []
    for item in raw:
        if isinstance(item, str):
            parsed = next(csv.reader([item], delimiter=delimiter), [])
            if parsed:
                rows.append(parsed)
        else:
            rows.append(["" if v is None else str(v) for v in item])
    return rows
