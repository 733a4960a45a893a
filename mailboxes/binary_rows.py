"""Rows of a query read in PostgreSQL's binary format, for the readers that move many bytes (FETCH, RETR).

As text a bytea travels as hexadecimal: twice its bytes for PostgreSQL to write and send and for psycopg to
decode. In binary, numbers, booleans and bytes come as they are stored, and Django's pass over each row is
skipped too (its converters are not needed for these columns). Elsewhere the query's own rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import QuerySet
from psycopg import pq


def read(rows: QuerySet) -> Iterable[Sequence]:
    """The rows of a `values_list` query."""
    if connection.vendor != "postgresql":
        return rows
    try:
        sql, params = rows.query.sql_with_params()
    except EmptyResultSet:  # a lookup Django knows matches nothing (an empty list of ids)
        return []
    return read_statement(sql, params)


def read_statement(sql: str, params: Sequence[Any]) -> list[Sequence]:
    """The rows of a statement written by hand: in binary on PostgreSQL (elsewhere as they come)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.cursor.format = pq.Format.BINARY
        cursor.execute(sql, params)
        return cursor.fetchall()
