"""Inserting a batch of rows of one table in one short statement, as objects of the session.

A check sweep writes hundreds of runs and can open a hundred incidents at once. The ORM's own
bulk INSERT renders a VALUES list with a placeholder per value, which psycopg and PostgreSQL
parse again for every batch (85 KB of SQL for 100 incidents). On PostgreSQL `insert_all`
sends one array per column instead, which unnest zips back into rows: the statement's text does
not grow with the batch, and SQLAlchemy still fills in the columns' Python-side defaults.
"""

from functools import cache
from operator import attrgetter
from typing import Any, TypeVar, cast

from sqlalchemy import ARRAY, Executable, Table, bindparam, func, insert, inspect, select
from sqlalchemy.ext.asyncio import AsyncSession

from models.base import Base

T = TypeVar("T", bound=Base)


async def insert_all(session: AsyncSession, entity: type[T], rows: list[dict[str, Any]]) -> list[T]:
    """Insert `rows` (attribute name -> value, the same names in every row) and return them as
    persistent objects of the session, in the order given: later changes are UPDATEs."""
    if not rows:
        return []
    if (await session.connection()).dialect.name != "postgresql":
        returning = insert(entity).returning(entity, sort_by_parameter_order=True)
        return list(await session.scalars(returning, rows))
    names = tuple(rows[0])
    loaded = await session.scalars(
        _unnest_insert(entity, names), {name: [row[name] for row in rows] for name in names}
    )
    # the identity column numbers the rows in the order the SELECT gives them, its ORDER BY:
    # SQLAlchemy's own sort_by_parameter_order relies on the same on PostgreSQL
    mapper = inspect(entity)
    return sorted(loaded, key=attrgetter(mapper.get_property_by_column(mapper.primary_key[0]).key))


@cache
def _unnest_insert(entity: type[Base], names: tuple[str, ...]) -> Executable:
    """INSERT INTO <table> (<columns>) SELECT a, b, ... FROM unnest(:a, :b, ...) WITH ORDINALITY
    ORDER BY ordinality RETURNING <row>: the rows are inserted in the order given."""
    mapper = inspect(entity)
    columns = [mapper.columns[name] for name in names]
    # one dimension: a JSON column's list value is one element of its array, not a sub-array
    arrays = (
        func.unnest(
            *(
                bindparam(name, type_=ARRAY(column.type, dimensions=1))
                for name, column in zip(names, columns, strict=True)
            )
        )
        .table_valued(*names, with_ordinality="position")
        .render_derived()
    )
    rows = select(*(arrays.c[name] for name in names)).order_by(arrays.c.position)
    table = cast(Table, mapper.local_table)
    statement = insert(table).from_select([column.name for column in columns], rows)
    return select(entity).from_statement(statement.returning(*table.c))
