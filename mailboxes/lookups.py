"""`column__among=values`: the column is one of the values, sent as one parameter on PostgreSQL.

Django's `__in` sends a parameter per value and PostgreSQL takes at most 65,535 parameters in a statement, so an
IMAP STORE, MOVE or EXPUNGE of every message of a 100,000-message folder failed. On PostgreSQL `among` sends
the values as one array (`= ANY(%s::type[])`, which PostgreSQL answers with the same index probes as an IN list);
on SQLite, and for a subquery, it is `__in`.
"""

from __future__ import annotations

from django.core.exceptions import EmptyResultSet
from django.db.models.lookups import In

from mailboxes import bulk


class Among(In):
    lookup_name = "among"

    def as_sql(self, compiler, connection):  # type: ignore[no-untyped-def]
        if connection.vendor != "postgresql" or not self.rhs_is_direct_value():
            return super().as_sql(compiler, connection)
        values = [value for value in dict.fromkeys(self.rhs) if value is not None]
        if not values:
            raise EmptyResultSet
        lhs, lhs_params = self.process_lhs(compiler, connection)
        field = self.lhs.output_field
        prepared = [field.get_db_prep_value(value, connection, prepared=True) for value in values]
        return f"{lhs} = ANY(%s::{bulk.array_type(field)})", [*lhs_params, prepared]
