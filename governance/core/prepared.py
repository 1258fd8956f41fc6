"""Querysets compiled once per process and connection, then run again with new values.

Building a queryset and compiling it to SQL costs far more CPU than the round trip of a small,
indexed statement (about 1.5–2.5 ms against 0.05 ms on the shared benchmark machine); a path
that runs the same statement for every unit of work — the execution engine locks two rows per
step — pays that again and again. ``PreparedQuery`` builds the queryset once with stand-in
values, keeps the SQL and the compiler that made it, and afterwards only binds the real values,
runs the statement and builds the model instances as the ORM does (``select_related`` objects
and annotations included). What the rows mean does not change: it is the ORM's own SQL.

On PostgreSQL the statement is also a server-side prepared statement of its connection (psycopg's
``prepare=True``, with the values bound by the server): planning a join or a few subqueries costs
the server more than running them on one row (0.6–0.8 ms against 0.1 ms per statement,
measured). Django leaves preparation off by default for poolers in transaction mode; the
portal's connections are direct or through a pooler in session mode (docs/operations.md), where
a connection keeps its prepared statements.
"""

from __future__ import annotations

import itertools
import threading
import uuid
import weakref
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from django.db import connections
from django.db.backends.utils import CursorDebugWrapper, CursorWrapper
from django.db.models import QuerySet
from django.db.models.query import get_related_populators
from django.db.transaction import TransactionManagementError

NEVER_BY_COUNT = 2**62

# Stand-ins no real key takes: distinct negative integers, random UUIDs.
_stand_ins = itertools.count(start=-(2**62))
_STAND_IN_TYPES: dict[type, Callable[[], Any]] = {int: lambda: next(_stand_ins), uuid.UUID: uuid.uuid4}


@lru_cache(maxsize=1)
def _preparing_cursor_class() -> type:
    """The PostgreSQL backend's server-binding cursor (psycopg 3), preparing every statement."""
    from django.db.backends.postgresql.base import ServerBindingCursor  # only where PostgreSQL is used

    class PreparingCursor(ServerBindingCursor):
        def execute(self, query, params=None, **options):
            return super().execute(query, params, **{**options, "prepare": True})

    return PreparingCursor


def _cursor(connection) -> CursorWrapper:
    """A cursor of ``connection`` whose statements are prepared on the server (PostgreSQL), wrapped
    as Django wraps its own (query logging, database errors); elsewhere Django's own cursor."""
    if connection.vendor != "postgresql":
        return connection.cursor()
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    if connection.connection.prepare_threshold is None:
        # Django leaves it None, which psycopg reads as "prepare nothing", even when asked. A
        # threshold no statement reaches keeps every other statement unprepared (Django's own
        # cursors bind on the client and never prepare anyway); ours ask with ``prepare=True``.
        connection.connection.prepare_threshold = NEVER_BY_COUNT
    raw = _preparing_cursor_class()(connection.connection)
    return _Logged(raw, connection) if connection.queries_logged else connection.make_cursor(raw)


class _Logged(CursorDebugWrapper):
    """Query logging (DEBUG, tests' query capture) with the statement's values in its text, as
    Django logs its own: the server-binding cursor keeps no client-side text of it."""

    def execute(self, sql, params=None):
        with self.debug_sql(self.db.ops.compose_sql(sql, params)):
            return CursorWrapper.execute(self, sql, params)


class _Compiled:
    """One queryset's SQL, where each value goes in it, and how its rows become instances."""

    def __init__(self, queryset: QuerySet, stand_ins: dict[str, Any]) -> None:
        self.alias = queryset.db
        self.for_update = queryset.query.select_for_update
        compiler = queryset.query.get_compiler(using=self.alias)
        self.sql, params = compiler.as_sql()
        # How each stand-in may appear among the parameters: as itself, or as the database's form
        # of it (SQLite keeps a UUID as its 32 hex digits), and how a real value takes that form.
        named: dict[Any, tuple[str, Callable[[Any], Any]]] = {}
        for name, value in stand_ins.items():
            named[value] = (name, lambda given: given)
            if isinstance(value, uuid.UUID):
                named[value.hex] = (name, lambda given: uuid.UUID(str(given)).hex)
        # Each parameter is either a value given per call (by name) or a constant of the query.
        self.slots = [
            (True, named[param])
            if isinstance(param, int | uuid.UUID | str) and param in named
            else (False, param)
            for param in params
        ]
        missing = set(stand_ins) - {slot[0] for given, slot in self.slots if given}
        if missing:
            raise ValueError(f"The query does not take {', '.join(sorted(missing))} as a parameter.")
        self.compiler = compiler
        klass_info = compiler.klass_info
        first, last = klass_info["select_fields"][0], klass_info["select_fields"][-1] + 1
        self.model = klass_info["model"]
        self.fields = slice(first, last)
        self.init_list = [column[0].target.attname for column in compiler.select[first:last]]
        self.populators = get_related_populators(klass_info, compiler.select, self.alias)
        self.annotations = dict(compiler.annotation_col_map or {})

    def run(self, values: dict[str, Any]) -> list:
        connection = connections[self.alias]
        if self.for_update and connection.get_autocommit():
            raise TransactionManagementError("select_for_update cannot be used outside of a transaction.")
        params = [slot[1](values[slot[0]]) if given else slot for given, slot in self.slots]
        with _cursor(connection) as cursor:
            cursor.execute(self.sql, params)
            rows = cursor.fetchall()
        found = []
        for row in self.compiler.results_iter(results=[rows]):
            obj = self.model.from_db(self.alias, self.init_list, row[self.fields])
            for populator in self.populators:
                populator.populate(row, obj)
            for name, position in self.annotations.items():
                setattr(obj, name, row[position])
            found.append(obj)
        return found


class PreparedQuery:
    """``build(**values)`` returns a queryset; ``PreparedQuery(build, name=type, ...)`` compiles it
    once per database connection (with stand-in values of those types: ``int`` or ``uuid.UUID``)
    and ``run(**values)`` returns its model instances for the real values.

    ``build`` must use each value only as a query parameter (a filter or a subquery's filter,
    never a LIMIT, a table or a column) and must not prefetch; a value the SQL does not take is
    refused when the query is compiled.
    """

    def __init__(self, build: Callable[..., QuerySet], **types: type) -> None:
        self.build = build
        self.types = types
        self._alias: str | None = None
        self._lock = threading.Lock()
        # One compiled form per connection object (Django keeps one per thread and alias).
        self._compiled: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def run(self, **values: Any) -> list:
        if set(values) != set(self.types):
            raise TypeError(f"Give exactly {', '.join(sorted(self.types))}.")
        compiled = None
        if self._alias is not None:
            with self._lock:
                compiled = self._compiled.get(connections[self._alias])
        if compiled is None:
            stand_ins = {name: _STAND_IN_TYPES[kind]() for name, kind in self.types.items()}
            compiled = _Compiled(self.build(**stand_ins), stand_ins)
            with self._lock:
                self._alias = compiled.alias
                self._compiled[connections[compiled.alias]] = compiled
        return compiled.run(values)
