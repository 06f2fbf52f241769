"""Inserting a batch of rows of one table in one short statement, as objects of the session.

A check sweep writes hundreds of runs and can open a hundred incidents at once. The ORM's own
bulk INSERT renders a VALUES list with a placeholder per value, which psycopg and PostgreSQL
parse again for every batch (85 KB of SQL for 100 incidents). On PostgreSQL `insert_all`
sends one array per column instead, which unnest zips back into rows: the statement's text does
not grow with the batch, and SQLAlchemy still fills in the columns' Python-side defaults.
"""

import json
from datetime import datetime
from enum import Enum
from functools import cache
from operator import attrgetter
from typing import Any, TypeVar, cast

from sqlalchemy import (
    ARRAY,
    Dialect,
    Executable,
    Table,
    bindparam,
    func,
    insert,
    inspect,
    select,
    text,
    update,
)
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
    loaded = await session.scalars(_unnest_insert(entity, names), _columns(rows, names))
    # the identity column numbers the rows in the order the SELECT gives them, its ORDER BY:
    # SQLAlchemy's own sort_by_parameter_order relies on the same on PostgreSQL
    mapper = inspect(entity)
    return sorted(loaded, key=attrgetter(mapper.get_property_by_column(mapper.primary_key[0]).key))


async def insert_many(
    session: AsyncSession, entity: type[Base], rows: list[dict[str, Any]]
) -> None:
    """Insert `rows` (attribute name -> value, the same names in every row) in one statement,
    returning nothing: for rows no one reads back in this transaction (timeline entries and
    events of a storm of repeats). On PostgreSQL the rows travel as one JSON document that
    jsonb_to_recordset unpacks: psycopg's text arrays of JSON values cost more than the rest
    of the request."""
    if not rows:
        return
    table = cast(Table, inspect(entity).local_table)
    connection = await session.connection()
    if connection.dialect.name != "postgresql":
        await session.execute(insert(table), rows)
        return
    names = tuple(rows[0])
    columns, record = _record(entity, names, connection.dialect)
    statement = (
        f"INSERT INTO {table.name} ({columns}) SELECT {columns} "  # noqa: S608 - names, not data
        f"FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS x({record})"
    )
    await session.execute(text(statement), {"rows": _document(entity, names, rows)})


async def update_many(
    session: AsyncSession, entity: type[Base], rows: list[dict[str, Any]], **same: Any
) -> None:
    """Set, in each row of `entity` whose primary key is a row's `id`, the row's other values
    (the same names in every row) and the `same` values: one statement on PostgreSQL."""
    if not rows:
        return
    table = cast(Table, inspect(entity).local_table)
    names = tuple(name for name in rows[0] if name != "id")
    connection = await session.connection()
    if connection.dialect.name != "postgresql":
        each = (
            update(table)
            .where(table.c.id == bindparam("b_id"))
            .values({name: bindparam(f"b_{name}") for name in names} | same)
        )
        await session.execute(
            each, [{f"b_{name}": value for name, value in row.items()} for row in rows]
        )
        return
    _, record = _record(entity, ("id", *names), connection.dialect)
    mapper = inspect(entity)
    assigned = [f"{mapper.columns[name].name} = x.{mapper.columns[name].name}" for name in names]
    assigned += [f"{mapper.columns[name].name} = :same_{name}" for name in same]
    statement = (
        f"UPDATE {table.name} SET {', '.join(assigned)} "  # noqa: S608 - names, not data
        f"FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS x({record}) "
        f"WHERE {table.name}.id = x.id"
    )
    values = {f"same_{name}": value for name, value in same.items()}
    await session.execute(
        text(statement).bindparams(
            *(bindparam(f"same_{name}", type_=mapper.columns[name].type) for name in same)
        ),
        {"rows": _document(entity, ("id", *names), rows), **values},
    )


def _record(entity: type[Base], names: tuple[str, ...], dialect: Dialect) -> tuple[str, str]:
    """The columns' names, and jsonb_to_recordset's record definition (name and SQL type)."""
    mapper = inspect(entity)
    columns = [mapper.columns[name] for name in names]
    return ", ".join(column.name for column in columns), ", ".join(
        f"{column.name} {column.type.compile(dialect=dialect)}" for column in columns
    )


def _document(entity: type[Base], names: tuple[str, ...], rows: list[dict[str, Any]]) -> str:
    """The rows as one JSON array of objects keyed by column name, values as the columns take
    them (an enum's value, a time in ISO 8601 with its offset)."""
    mapper = inspect(entity)
    keys = [mapper.columns[name].name for name in names]
    return json.dumps(
        [{key: row[name] for key, name in zip(keys, names, strict=True)} for row in rows],
        default=_plain,
    )


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    raise TypeError(f"{type(value).__name__} is not JSON")


def _columns(rows: list[dict[str, Any]], names: tuple[str, ...]) -> dict[str, list[Any]]:
    """The rows as one array per column, under the names `_arrays` binds."""
    return {f"a_{name}": [row[name] for row in rows] for name in names}


def _arrays(entity: type[Base], names: tuple[str, ...]) -> Any:
    """unnest(:a, :b, ...) WITH ORDINALITY AS (a, b, ..., position): one array per column."""
    mapper = inspect(entity)
    columns = [mapper.columns[name] for name in names]
    # one dimension: a JSON column's list value is one element of its array, not a sub-array
    return (
        func.unnest(
            *(
                bindparam(f"a_{name}", type_=ARRAY(column.type, dimensions=1))
                for name, column in zip(names, columns, strict=True)
            )
        )
        .table_valued(*names, with_ordinality="position")
        .render_derived()
    )


@cache
def _unnest_plain_insert(entity: type[Base], names: tuple[str, ...]) -> Executable:
    mapper = inspect(entity)
    arrays = _arrays(entity, names)
    rows = select(*(arrays.c[name] for name in names)).order_by(arrays.c.position)
    table = cast(Table, mapper.local_table)
    return insert(table).from_select([mapper.columns[name].name for name in names], rows)


@cache
def _unnest_insert(entity: type[Base], names: tuple[str, ...]) -> Executable:
    """INSERT INTO <table> (<columns>) SELECT a, b, ... FROM unnest(:a, :b, ...) WITH ORDINALITY
    ORDER BY ordinality RETURNING <row>: the rows are inserted in the order given."""
    statement = _unnest_plain_insert(entity, names)
    table = cast(Table, inspect(entity).local_table)
    return select(entity).from_statement(statement.returning(*table.c))  # type: ignore[attr-defined]
