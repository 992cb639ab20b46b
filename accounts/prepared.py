"""Queries the ORM builds once per process and database, then runs again with
other values: the settings pages' own reads.

Django builds a query's SQL anew each time it runs it: filters resolved,
joins set up, columns and ordering compiled. For the small reads of a settings
page that work costs about twenty times the query itself (about 0.3 to 0.9 ms
against 0.04 ms on SQLite); Django has no prepared form of a QuerySet, and the
database drivers' prepared statements start after it. ``prepared`` keeps what
the ORM compiled and only puts the new values in the parameters:

    @prepared
    def _tokens(user_id: int, since: datetime) -> QuerySet:
        return Token.objects.filter(user_id=user_id, created_at__gte=since).values_list(...)

    rows = _tokens(user.pk, since)      # a list of tuples, as values_list gives them

The builder is called once per database alias, with stand-in values of the
arguments' types (``int``, ``str``, ``datetime``); each stand-in must reach the
SQL's parameters as a parameter of its own (a filter's value, not a slice bound
nor part of the SQL text), which the preparation checks; None is refused (the ORM
writes ``IS NULL`` for it). Rows come back with the
ORM's converters applied (aware datetimes, booleans, JSON), so they equal what
the QuerySet gives. A builder returning a ``values_list`` QuerySet gives tuples
(``flat=True``: values, ``named=True``: named tuples); one returning model
instances (no ``select_related``, no annotations) gives instances, deferred
fields left deferred.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db import connections
from django.db.models import Model, QuerySet
from django.db.models.query import (
    FlatValuesListIterable,
    ModelIterable,
    NamedValuesListIterable,
    ValuesListIterable,
)
from django.db.models.utils import create_namedtuple_class

_STAND_IN_BASE = -2_094_385_170  # an id no table hands out


def _stand_in(kind: type, index: int) -> Any:
    if kind is int:
        return _STAND_IN_BASE - index
    if kind is str:
        return f"\x00prepared-{index}\x00"
    if kind is datetime:
        return datetime(1111, 1, 1, 1, 1, index, 111_111, tzinfo=UTC)
    raise TypeError(f"prepared: an argument of type {kind!r} cannot be stood in for.")


def _adapter(kind: type, connection: Any) -> Callable[[Any], Any]:
    """How the ORM passes a value of ``kind`` to the driver (what a filter does)."""
    if kind is datetime:
        adapt: Callable[[Any], Any] = connection.ops.adapt_datetimefield_value
        return adapt
    return lambda value: value


def _names(queryset: QuerySet[Any]) -> list[str]:
    """The fields of a ``values_list(named=True)`` row (as NamedValuesListIterable)."""
    fields: tuple[str, ...] = queryset._fields  # type: ignore[attr-defined]
    if fields:
        return list(fields)
    query = queryset.query
    return [*query.extra_select, *query.values_select, *query.annotation_select]


@dataclass(frozen=True)
class _Compiled:
    sql: str
    params: tuple[Any, ...]
    # (parameter position, argument position, adapter)
    slots: tuple[tuple[int, int, Callable[[Any], Any]], ...]
    converters: dict[int, tuple[list[Any], Any]]
    columns: int
    flat: bool
    named: type[tuple[Any, ...]] | None
    model: type[Model] | None
    field_names: list[str]


class prepared:
    """A query builder whose SQL is compiled once per database alias (module doc)."""

    def __init__(self, build: Callable[..., QuerySet[Any]]) -> None:
        self.build = build
        self.__doc__ = build.__doc__
        self.__name__ = build.__name__
        self.__wrapped__ = build
        signature = inspect.signature(build, eval_str=True)
        self.kinds = [parameter.annotation for parameter in signature.parameters.values()]
        self._compiled: dict[tuple[str, str], _Compiled] = {}
        self._lock = threading.Lock()

    def _compile(self, alias: str, connection: Any) -> _Compiled:
        stand_ins = [_stand_in(kind, i) for i, kind in enumerate(self.kinds)]
        queryset = self.build(*stand_ins)
        iterable = queryset._iterable_class
        if iterable not in (
            ValuesListIterable,
            NamedValuesListIterable,
            FlatValuesListIterable,
            ModelIterable,
        ):
            raise TypeError(f"prepared {self.__name__}: values_list() or model instances only.")
        query = queryset.query
        compiler = query.get_compiler(using=alias)
        sql, params = compiler.as_sql()
        model: type[Model] | None = None
        field_names: list[str] = []
        if iterable is ModelIterable:
            if compiler.klass_info is None or compiler.klass_info.get("related_klass_infos"):
                raise TypeError(f"prepared {self.__name__}: no select_related().")
            if compiler.annotation_col_map:
                raise TypeError(f"prepared {self.__name__}: no annotations on instances.")
            select_fields = compiler.klass_info["select_fields"]
            if select_fields != list(range(len(select_fields))):
                raise TypeError(f"prepared {self.__name__}: the model's columns must come first.")
            model = compiler.klass_info["model"]
            field_names = [compiler.select[i][0].target.attname for i in select_fields]
        adapted = [
            _adapter(kind, connection)(value)
            for kind, value in zip(self.kinds, stand_ins, strict=True)
        ]
        slots = []
        for position, value in enumerate(params):
            for argument, stand_in in enumerate(adapted):
                if type(value) is type(stand_in) and value == stand_in:
                    slots.append((position, argument, _adapter(self.kinds[argument], connection)))
        missing = set(range(len(stand_ins))) - {argument for _p, argument, _a in slots}
        if missing:
            names = list(inspect.signature(self.build).parameters)
            raise TypeError(
                f"prepared {self.__name__}: {', '.join(names[i] for i in sorted(missing))} "
                "did not reach the query's parameters."
            )
        expressions = [s[0] for s in compiler.select[0 : compiler.col_count]]
        return _Compiled(
            sql=sql,
            params=tuple(params),
            slots=tuple(slots),
            converters=compiler.get_converters(expressions),
            columns=compiler.col_count,
            flat=iterable is FlatValuesListIterable,
            named=(
                create_namedtuple_class(*_names(queryset))
                if iterable is NamedValuesListIterable
                else None
            ),
            model=model,
            field_names=field_names,
        )

    def __call__(self, *args: Any) -> list[Any]:
        if None in args:
            # The ORM writes ``IS NULL`` for None, not ``= %s``: the kept SQL cannot.
            raise TypeError(f"prepared {self.__name__}: None cannot be a value.")
        alias = "default"
        connection = connections[alias]
        key = (alias, connection.vendor)
        compiled = self._compiled.get(key)
        if compiled is None:
            with self._lock:
                compiled = self._compiled.get(key) or self._compile(alias, connection)
                self._compiled[key] = compiled
        params = list(compiled.params)
        for position, argument, adapt in compiled.slots:
            params[position] = adapt(args[argument])
        with connection.cursor() as cursor:
            cursor.execute(compiled.sql, params)
            rows = cursor.fetchall()
        columns = compiled.columns
        if rows and len(rows[0]) != columns:
            rows = [row[:columns] for row in rows]
        if compiled.converters:
            rows = [self._convert(row, compiled.converters, connection) for row in rows]
        if compiled.flat:
            return [row[0] for row in rows]
        if compiled.named is not None:
            named = compiled.named
            return [tuple.__new__(named, row) for row in rows]
        if compiled.model is not None:
            model, names = compiled.model, compiled.field_names
            return [model.from_db(alias, names, row) for row in rows]
        return [tuple(row) for row in rows]

    @staticmethod
    def _convert(row: Any, converters: dict[int, tuple[list[Any], Any]], connection: Any) -> Any:
        values = list(row)
        for position, (functions, expression) in converters.items():
            value = values[position]
            for function in functions:
                value = function(value, expression, connection)
            values[position] = value
        return values
