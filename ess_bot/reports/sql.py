"""SQL expressions the report declarations use, the same on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import String
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement


class month_key(FunctionElement):  # noqa: N801 - reads like a SQL function
    """``YYYY-MM`` of a date column, computed by the database (to group by month on both backends).
    On SQLite it is the expression of the ``ix_accompaniments_month_cube`` index (migration 0006)."""

    type = String()
    inherit_cache = True
    name = "month_key"


@compiles(month_key, "sqlite")
def _month_key_sqlite(element, compiler, **kw):  # dates are stored as 'YYYY-MM-DD' text
    return f"substr({compiler.process(element.clauses, **kw)}, 1, 7)"


@compiles(month_key, "postgresql")
def _month_key_postgresql(element, compiler, **kw):
    return f"to_char(CAST({compiler.process(element.clauses, **kw)} AS TIMESTAMP), 'YYYY-MM')"


@compiles(month_key)
def _month_key_default(element, compiler, **kw):
    arg = compiler.process(element.clauses, **kw)
    return (f"(CAST(EXTRACT(YEAR FROM {arg}) AS VARCHAR(4)) || '-' || "
            f"LPAD(CAST(EXTRACT(MONTH FROM {arg}) AS VARCHAR(2)), 2, '0'))")
