"""Multi-row INSERTs for the store's hot path (the bodies and messages of a delivery group), and UPDATEs of many
rows (flags of a STORE, folders and UIDs of a MOVE).

Django's `bulk_create` compiles its SQL anew on every call, and for a model with a BinaryField (both of these)
it writes a VALUES row of placeholders per object: each group size is a different statement, long enough that
psycopg parses it again every time. On PostgreSQL `insert` sends one statement per model whatever the number of
rows: each column travels as an array and UNNEST turns the arrays back into rows (what Django itself does for
models without binary fields), so the statement is converted once and prepared once per connection. Values
still go through each field's `pre_save` and `get_db_prep_save`, as with `bulk_create`; on SQLite it is
`bulk_create`.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from django.db import connection, connections
from django.db.models import Field, Model


def array_type(field: Field) -> str:
    """The PostgreSQL array type of a column, without modifiers, as Django's own UNNEST inserts write it
    (varchar[], not varchar(300)[])."""
    return str(field.db_type(connection)).split("(")[0] + "[]"


def inserted_fields(model: type[Model]) -> list[Field]:
    """The columns an INSERT of `model` writes: every concrete one but the key and generated columns."""
    return [field for field in model._meta.concrete_fields if not field.primary_key and not field.generated]


@functools.cache
def _statement(model: type[Model], single: bool) -> tuple[str, list[Field]]:
    """The INSERT of one row (plain values: psycopg dumps them for less than arrays) or of any number (arrays)."""
    fields = inserted_fields(model)
    quote = connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in fields)
    if single:
        values = "VALUES (" + ", ".join(["%s"] * len(fields)) + ")"
    else:
        # %b: arrays are sent in binary format, which psycopg dumps without quoting every element.
        values = "SELECT * FROM UNNEST(" + ", ".join(f"%b::{array_type(field)}" for field in fields) + ")"
    sql = f"INSERT INTO {quote(model._meta.db_table)} ({columns}) {values} RETURNING {quote(model._meta.pk.column)}"
    return sql, fields


def insert_statement(objs: Sequence[Model]) -> tuple[str, list[Any]]:
    """On PostgreSQL, the INSERT of `objs` (all of one model, at least one) and its parameters, for `insert` or for
    a step of a larger statement; it returns their new keys in order."""
    single = len(objs) == 1
    sql, fields = _statement(type(objs[0]), single)
    wrapper = connections[connection.alias]  # not the proxy, which would be looked up again for every value
    columns = [[field.get_db_prep_save(field.pre_save(obj, True), wrapper) for obj in objs] for field in fields]
    return sql, [values[0] for values in columns] if single else columns


def insert(objs: Sequence[Model]) -> None:
    """Insert `objs`, all of one model, in one statement, and set their primary keys (like `bulk_create`)."""
    if not objs:
        return
    model = type(objs[0])
    if connection.vendor != "postgresql":
        model._default_manager.bulk_create(objs)
        return
    sql, params = insert_statement(objs)
    wrapper = connections[connection.alias]
    with wrapper.cursor() as cursor:
        cursor.execute(sql, params)
        keys = cursor.fetchall()
    # UNNEST yields the rows in array order and RETURNING follows the insertion order, as bulk_create relies on.
    for obj, (key,) in zip(objs, keys, strict=True):
        obj.pk = key
        obj._state.adding = False
        obj._state.db = wrapper.alias


@functools.cache
def _linked_statement(parent: type[Model], child: type[Model], link: str, single: bool) -> tuple[str, list[Field]]:
    """The INSERT of parents and of children whose `link` points at one of them, as one statement: the children
    name their parent by its number in the parents' arrays (1-based), turned into its key by a join on the
    parents' RETURNING, numbered in insertion order (as `insert` relies on)."""
    parent_sql, _ = _statement(parent, single)
    link_field = child._meta.get_field(link)
    assert isinstance(link_field, Field)
    fields = [field for field in _statement(child, single)[1] if field is not link_field]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in [*fields, link_field])
    parent_key = quote(parent._meta.pk.column)
    names = ", ".join(f"c{n}" for n in range(len(fields)))
    if single:
        parents = f"WITH parent AS ({parent_sql})"
        rows = "SELECT " + ", ".join(["%s"] * len(fields)) + f", parent.{parent_key} FROM parent"
    else:
        parents = (
            f"WITH parent AS ({parent_sql}), "
            f"numbered AS (SELECT {parent_key}, row_number() OVER () AS number FROM parent)"
        )
        arrays = ", ".join(f"%b::{array_type(field)}" for field in fields)
        rows = (
            f"SELECT {names}, numbered.{parent_key} FROM UNNEST({arrays}, %b::int8[]) WITH ORDINALITY "
            f"AS v ({names}, parent_number, ordinal) JOIN numbered ON numbered.number = v.parent_number "
            "ORDER BY v.ordinal"
        )
    sql = (
        f"{parents} INSERT INTO {quote(child._meta.db_table)} ({columns}) {rows} "
        f"RETURNING {quote(child._meta.pk.column)}, {quote(link_field.column)}"
    )
    return sql, fields


def insert_linked(parents: Sequence[Model], children: Sequence[Model], link: str) -> None:
    """Insert new `parents` (of one model) and `children` (of another), each child's foreign key `link` set to
    one of the parents, and set every primary key: on PostgreSQL in one statement (the bodies and the copies of
    a delivery, one round trip instead of two); elsewhere `insert` twice. Every parent must have a child."""
    if connection.vendor != "postgresql":
        insert(parents)
        for child in children:
            setattr(child, link, getattr(child, link))  # its key column from the parent's new key
        insert(children)
        return
    number = {id(parent): n for n, parent in enumerate(parents, start=1)}
    single = len(parents) == len(children) == 1
    sql, fields = _linked_statement(type(parents[0]), type(children[0]), link, single)
    wrapper = connections[connection.alias]
    parent_fields = _statement(type(parents[0]), single)[1]
    parent_columns = [[f.get_db_prep_save(f.pre_save(obj, True), wrapper) for obj in parents] for f in parent_fields]
    columns = [[f.get_db_prep_save(f.pre_save(obj, True), wrapper) for obj in children] for f in fields]
    if single:
        params = [values[0] for values in parent_columns] + [values[0] for values in columns]
    else:
        params = [*parent_columns, *columns, [number[id(getattr(child, link))] for child in children]]
    with wrapper.cursor() as cursor:
        cursor.execute(sql, params)
        keys = cursor.fetchall()
    for child, (key, parent_key) in zip(children, keys, strict=True):
        parent = getattr(child, link)
        for obj, pk in ((parent, parent_key), (child, key)):
            obj.pk = pk
            obj._state.adding = False
            obj._state.db = wrapper.alias
        setattr(child, link, parent)  # its key column too
    assert all(parent.pk is not None for parent in parents), "a parent without a child was not inserted"


def update(objs: Sequence[Model], names: Sequence[str]) -> None:
    """Write these fields of `objs` (all of one model, already saved), in one statement on PostgreSQL: each column
    travels as an array joined to the rows by primary key. Django's `bulk_update` writes a CASE with parameters per
    row, which grows quadratically and exceeds PostgreSQL's 65,535 parameters a statement for a STORE of a whole
    big folder; on SQLite it is `bulk_update`, in batches within SQLite's own limit."""
    if not objs:
        return
    if connection.vendor != "postgresql":
        type(objs[0])._default_manager.bulk_update(objs, names, batch_size=500)
        return
    sql, params = _update_statement(objs, names)
    with connections[connection.alias].cursor() as cursor:
        cursor.execute(sql, params)


def update_stamped(objs: Sequence[Model], names: Sequence[str], stamped: str, stamp: tuple[str, list]) -> Any:
    """PostgreSQL only: `update`, with the column `stamped` of every row set to the one value that the statement
    `stamp` (SQL and parameters, RETURNING it as `value`) returns, such as the folder's new mod-sequence, in the
    same statement: one round trip instead of two. Returns that value; `objs` must not be empty."""
    with connections[connection.alias].cursor() as cursor:
        cursor.execute(*stamped_statement(objs, names, stamped, stamp))
        return cursor.fetchone()[0]


def stamped_statement(
    objs: Sequence[Model], names: Sequence[str], stamped: str, stamp: tuple[str, list]
) -> tuple[str, list]:
    """The statement of `update_stamped` and its parameters; its one row holds the value."""
    sql, params = _update_statement(objs, names, stamped)
    stamp_sql, stamp_params = stamp
    return f"WITH stamp AS ({stamp_sql}), updated AS ({sql}) SELECT value FROM stamp", [*stamp_params, *params]


def _update_statement(objs: Sequence[Model], names: Sequence[str], stamped: str = "") -> tuple[str, list]:
    model = type(objs[0])
    fields = [field for field in model._meta.concrete_fields if field.name in names]
    wrapper = connections[connection.alias]
    quote = connection.ops.quote_name
    pk = model._meta.pk
    assert pk is not None
    columns = [pk, *fields]
    arrays = ", ".join(f"%b::{array_type(field)}" for field in columns)
    names_sql = ", ".join(quote(field.column) for field in columns)
    sets = ", ".join(f"{quote(field.column)} = v.{quote(field.column)}" for field in fields)
    table = quote(model._meta.db_table)
    key = quote(pk.column)
    sources = f"UNNEST({arrays}) AS v ({names_sql})"
    if stamped:
        sets += f", {quote(stamped)} = stamp.value"
        sources += ", stamp"
    sql = f"UPDATE {table} SET {sets} FROM {sources} WHERE {table}.{key} = v.{key}"
    values = [[field.get_db_prep_save(getattr(obj, field.attname), wrapper) for obj in objs] for field in columns]
    return sql, values
