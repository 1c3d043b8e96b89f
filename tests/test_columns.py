"""Rows to Arrow columns in C (`_columns`): the same tables pyarrow makes of the same rows,
and a row it cannot hold refused whole, with its column and row named."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reachwatch.pipeline._columns import Columns
from reachwatch.pipeline._ingest import _ARROW_TYPES, _columns_of, _table, _table_of

_VALUES = {
    "VARCHAR": st.text(max_size=12),
    "BLOB": st.binary(max_size=12),
    "BOOLEAN": st.booleans(),
    "INTEGER": st.integers(-(2**31), 2**31 - 1),
    "BIGINT": st.integers(-(2**63), 2**63 - 1),
    "UBIGINT": st.integers(0, 2**64 - 1),
    "DOUBLE": st.floats(allow_nan=False) | st.integers(-(2**53), 2**53),
    "TIMESTAMP": st.datetimes(
        min_value=datetime(1, 1, 2),  # an offset cannot take an aware time out of range
        max_value=datetime(9999, 12, 30),
        # offsets in whole seconds, as zones have: pyarrow drops an offset's microseconds
        timezones=st.none()
        | st.builds(lambda s: timezone(timedelta(seconds=s)), st.integers(-82_800, 82_800)),
    ),
    "VARCHAR[]": st.lists(st.none() | st.text(max_size=6), max_size=4),
}


_GOOD = {
    "VARCHAR": "ok",
    "BLOB": b"ok",
    "BOOLEAN": True,
    "INTEGER": 3,
    "BIGINT": -3,
    "UBIGINT": 3,
    "DOUBLE": 0.5,
    "TIMESTAMP": datetime(2024, 5, 1),
    "VARCHAR[]": ["ok"],
}


@st.composite
def _tables(draw: st.DrawFn) -> tuple[dict[str, str], list[tuple[Any, ...]]]:
    kinds = draw(st.lists(st.sampled_from(sorted(_VALUES)), min_size=1, max_size=6))
    columns = {f"c{i}": kind for i, kind in enumerate(kinds)}
    row = st.tuples(*(st.none() | _VALUES[kind] for kind in kinds))
    return columns, draw(st.lists(row, max_size=30))


def _pyarrow(columns: dict[str, str], rows: list[tuple[Any, ...]]) -> pa.Table:
    """What pyarrow makes of the rows: the conversion `_columns` replaces."""
    struct = pa.struct([(name, _ARROW_TYPES[kind][0]) for name, kind in columns.items()])
    return pa.Table.from_struct_array(pa.array(rows, struct))


@settings(max_examples=400, deadline=None)
@given(_tables(), st.integers(0, 30))
def test_the_columns_are_those_pyarrow_makes(
    table: tuple[dict[str, str], list[tuple[Any, ...]]], cut: int
) -> None:
    """Every kind, nulls anywhere, aware times in UTC; in one call or in two."""
    columns, rows = table
    expected = _pyarrow(columns, rows)
    once = _table(columns, rows)
    once.validate(full=True)
    assert once.schema == expected.schema and once.equals(expected)
    built = _columns_of(columns)
    built.extend(rows[:cut])
    built.extend(rows[cut:])
    assert _table_of(columns, built).equals(expected)


def test_duckdb_reads_the_columns_as_written() -> None:
    columns = {"s": "VARCHAR", "i": "INTEGER", "t": "TIMESTAMP", "l": "VARCHAR[]", "b": "BOOLEAN"}
    rows = [
        ("Azərbaycan", 7, datetime(2017, 5, 15, 12), ["a", None, "ü"], True),
        (None, None, None, None, None),
        ("", -(2**31), datetime(1970, 1, 1), [], False),
    ]
    built = _table(columns, rows)  # noqa: F841 (read by DuckDB by its name)
    assert duckdb.sql("SELECT * FROM built").fetchall() == [
        ("Azərbaycan", 7, datetime(2017, 5, 15, 12), ["a", None, "ü"], True),
        (None, None, None, None, None),
        ("", -(2**31), datetime(1970, 1, 1), [], False),
    ]


@pytest.mark.parametrize(
    ("kind", "value", "error", "says"),
    [
        ("VARCHAR", 7, TypeError, "column 'x', row 1: expected str, got int"),
        ("VARCHAR", b"x", TypeError, "expected str, got bytes"),
        ("VARCHAR", "\ud800", UnicodeEncodeError, "surrogates not allowed"),
        ("INTEGER", 2**31, OverflowError, "column 'x', row 1: 2147483648 is out of range"),
        ("INTEGER", True, TypeError, "expected int, got bool"),
        ("INTEGER", 1.5, TypeError, "expected int, got float"),
        ("UBIGINT", -1, OverflowError, "-1 is out of range"),
        ("UBIGINT", 2**64, OverflowError, "is out of range"),
        ("BIGINT", 2**63, OverflowError, "is out of range"),
        ("BOOLEAN", 1, TypeError, "expected bool, got int"),
        ("DOUBLE", "1", TypeError, "expected float, got str"),
        ("TIMESTAMP", "2024-05-01", TypeError, "expected datetime, got str"),
        ("BLOB", "x", TypeError, "expected bytes, got str"),
        ("VARCHAR[]", ["a", 1], TypeError, "expected a list of str, got list"),
        ("VARCHAR[]", "ab", TypeError, "expected a list of str, got str"),
    ],
)
def test_a_value_the_column_cannot_hold_refuses_all_the_rows_given(
    kind: str, value: Any, error: type[Exception], says: str
) -> None:
    """The rows before the call stay, the rows of the call are gone, whatever was appended
    of them to any buffer; the columns go on taking rows."""
    columns = {"before": "VARCHAR[]", "x": kind, "after": "BOOLEAN"}
    good = _GOOD[kind]
    built = _columns_of(columns)
    built.extend([(["kept"], good, True)])
    with pytest.raises(error, match=says):
        built.extend([(["gone", "too"], good, False), (["gone"], value, None)])
    assert len(built) == 1
    built.extend([(None, None, False)])
    expected = [(["kept"], good, True), (None, None, False)]
    assert _table_of(columns, built).equals(_pyarrow(columns, expected))


def test_rows_of_another_width_or_no_tuples_are_refused() -> None:
    built = Columns("si", ("a", "b"))
    with pytest.raises(TypeError, match="row 0: expected a tuple of 2 values"):
        built.extend([("a",)])
    with pytest.raises(TypeError, match="row 0: expected a tuple of 2 values"):
        built.extend([["a", 1]])
    with pytest.raises(TypeError, match="rows must be a sequence"):
        built.extend(7)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="one name and one kind"):
        Columns("sx", ("a", "b"))
    with pytest.raises(ValueError, match="one name and one kind"):
        Columns("s", ("a", "b"))


def test_undo_takes_back_the_last_extend_only() -> None:
    columns = {"s": "VARCHAR", "n": "BIGINT", "b": "BOOLEAN", "l": "VARCHAR[]"}
    built = _columns_of(columns)
    first = [("a", 1, True, ["x"]), (None, None, None, None)]
    built.extend(first)
    built.extend([("b" * 100, 2**40, False, ["y", None] * 9)] * 9)
    built.undo()
    with pytest.raises(ValueError, match="no extend to undo"):
        built.undo()
    assert len(built) == 2
    assert _table_of(columns, built).equals(_pyarrow(columns, first))
    assert len(built) == 0  # taken: empty again, and ready for more
    built.extend(first)
    assert _table_of(columns, built).equals(_pyarrow(columns, first))
