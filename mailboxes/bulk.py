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

from django.db import connection, connections
from django.db.models import Field, Model


def array_type(field: Field) -> str:
    """The PostgreSQL array type of a column, without modifiers, as Django's own UNNEST inserts write it
    (varchar[], not varchar(300)[])."""
    return str(field.db_type(connection)).split("(")[0] + "[]"


@functools.cache
def _statement(model: type[Model], single: bool) -> tuple[str, list[Field]]:
    """The INSERT of one row (plain values: psycopg dumps them for less than arrays) or of any number (arrays)."""
    fields = [field for field in model._meta.concrete_fields if not field.primary_key and not field.generated]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in fields)
    if single:
        values = "VALUES (" + ", ".join(["%s"] * len(fields)) + ")"
    else:
        # %b: arrays are sent in binary format, which psycopg dumps without quoting every element.
        values = "SELECT * FROM UNNEST(" + ", ".join(f"%b::{array_type(field)}" for field in fields) + ")"
    sql = f"INSERT INTO {quote(model._meta.db_table)} ({columns}) {values} RETURNING {quote(model._meta.pk.column)}"
    return sql, fields


def insert(objs: Sequence[Model]) -> None:
    """Insert `objs`, all of one model, in one statement, and set their primary keys (like `bulk_create`)."""
    if not objs:
        return
    model = type(objs[0])
    if connection.vendor != "postgresql":
        model._default_manager.bulk_create(objs)
        return
    single = len(objs) == 1
    sql, fields = _statement(model, single)
    wrapper = connections[connection.alias]  # not the proxy, which would be looked up again for every value
    columns = [[field.get_db_prep_save(field.pre_save(obj, True), wrapper) for obj in objs] for field in fields]
    with wrapper.cursor() as cursor:
        cursor.execute(sql, [values[0] for values in columns] if single else columns)
        keys = cursor.fetchall()
    # UNNEST yields the rows in array order and RETURNING follows the insertion order, as bulk_create relies on.
    for obj, (key,) in zip(objs, keys, strict=True):
        obj.pk = key
        obj._state.adding = False
        obj._state.db = wrapper.alias


def update(objs: Sequence[Model], names: Sequence[str]) -> None:
    """Write these fields of `objs` (all of one model, already saved), in one statement on PostgreSQL: each column
    travels as an array joined to the rows by primary key. Django's `bulk_update` writes a CASE with parameters per
    row, which grows quadratically and exceeds PostgreSQL's 65,535 parameters a statement for a STORE of a whole
    big folder; on SQLite it is `bulk_update`, in batches within SQLite's own limit."""
    if not objs:
        return
    model = type(objs[0])
    fields = [field for field in model._meta.concrete_fields if field.name in names]
    if connection.vendor != "postgresql":
        model._default_manager.bulk_update(objs, names, batch_size=500)
        return
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
    sql = f"UPDATE {table} SET {sets} FROM UNNEST({arrays}) AS v ({names_sql}) WHERE {table}.{key} = v.{key}"
    values = [[field.get_db_prep_save(getattr(obj, field.attname), wrapper) for obj in objs] for field in columns]
    with wrapper.cursor() as cursor:
        cursor.execute(sql, values)
