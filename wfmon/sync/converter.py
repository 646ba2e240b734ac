"""The sync's own messages, converted to and from JSON without Temporal's generic walk.

Temporal's default JSON converter decodes a dataclass by reading its type hints
(``typing.get_type_hints``) and converting field by field on every payload, and encodes it
with ``dataclasses.asdict``, which deep-copies it. A sync passes each execution's
:class:`~wfmon.sync.messages.ExecutionRef` and :class:`~wfmon.sync.messages.SyncResult`
through several payloads (the coordinator's update, the batch child, its activity), and
that walk measured ~165 µs per result decoded and ~40 µs encoded.

:class:`SyncPayloadConverter` is Temporal's default payload converter with two changes to
its ``json/plain`` converter, for the classes of :mod:`wfmon.sync.messages` only:

- decoding builds them with field decoders made once per class; any value that is not
  exactly the shape those messages have (a wrong type, a missing field) goes to
  Temporal's own conversion, which then gives its usual result or error;
- encoding writes each of them as a shallow dict of its fields.

The JSON is byte for byte Temporal's (its encoder sorts the keys), and the decoded values
are equal to the default converter's (``tests/sync/test_converter.py`` checks both), so
histories replay the same whichever converter wrote them. Every other type goes through
the default converter untouched.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from enum import Enum
from typing import Any, Final

from temporalio.client import Client
from temporalio.converter import (
    AdvancedJSONEncoder,
    CompositePayloadConverter,
    DataConverter,
    DefaultPayloadConverter,
    JSONPlainPayloadConverter,
    JSONTypeConverter,
)

from wfmon.sync import messages

#: Every dataclass the sync's workflows and activities exchange.
MESSAGE_CLASSES: Final[tuple[type, ...]] = (
    messages.ExecutionRef,
    messages.SyncResult,
    messages.SyncBatch,
    messages.CoordinatorConfig,
    messages.LiveExecution,
    messages.CoordinatorInput,
    messages.SyncFailures,
    messages.CoordinatorState,
)

Decode = Callable[[Any], Any]


class _NotFast(Exception):
    """The value is not shaped as the fast path expects: Temporal's conversion decides."""


def _exact(kind: type) -> Decode:
    def decode(value: Any) -> Any:
        if type(value) is not kind:
            raise _NotFast
        return value

    return decode


def _float(value: Any) -> float:
    if type(value) is float:
        return value
    if type(value) is int:
        return float(value)
    raise _NotFast


def _optional(inner: Decode) -> Decode:
    def decode(value: Any) -> Any:
        return None if value is None else inner(value)

    return decode


def _list_of(inner: Decode) -> Decode:
    def decode(value: Any) -> Any:
        if type(value) is not list:
            raise _NotFast
        return [inner(v) for v in value]

    return decode


def _enum(kind: type[Enum]) -> Decode:
    def decode(value: Any) -> Any:
        if type(value) is not str:
            raise _NotFast
        try:
            return kind(value)
        except ValueError:
            raise _NotFast from None

    return decode


class _Decoders:
    """Field decoders per message class, built on first use from its type hints."""

    def __init__(self, classes: tuple[type, ...]) -> None:
        self._classes = frozenset(classes)
        self._built: dict[type, Decode] = {}

    def get(self, hint: object) -> Decode | None:
        if not isinstance(hint, type) or hint not in self._classes:
            return None
        decode = self._built.get(hint)
        if decode is None:
            decode = self._built[hint] = self._dataclass(hint)
        return decode

    def _dataclass(self, cls: type) -> Decode:
        hints = typing.get_type_hints(cls)
        fields = dataclasses.fields(cls)
        if any(not f.init for f in fields):
            raise TypeError(f"{cls.__name__}: init=False fields are not supported")
        decoders = [(f.name, self._field(hints[f.name])) for f in fields]

        def decode(value: Any) -> Any:
            if type(value) is not dict:
                raise _NotFast
            try:
                return cls(**{name: d(value[name]) for name, d in decoders if name in value})
            except TypeError:  # a required field is missing
                raise _NotFast from None

        return decode

    def _field(self, hint: Any) -> Decode:
        if hint in (str, int, bool):
            return _exact(hint)
        if hint is float:
            return _float
        args = typing.get_args(hint)
        if isinstance(hint, types.UnionType) and len(args) == 2 and type(None) in args:
            (inner,) = (a for a in args if a is not type(None))
            return _optional(self._field(inner))
        if typing.get_origin(hint) is list and len(args) == 1:
            return _list_of(self._field(args[0]))
        if isinstance(hint, type) and issubclass(hint, Enum) and issubclass(hint, str):
            return _enum(hint)
        if isinstance(hint, type) and hint in self._classes:
            return lambda value: self._lazy(hint)(value)
        raise TypeError(f"no fast decoder for field type {hint!r}")

    def _lazy(self, cls: type) -> Decode:
        decode = self.get(cls)
        assert decode is not None
        return decode


#: One set of decoders per process: a payload converter is made for every client and
#: worker that :func:`sync_client` prepares (``coordinator()`` does so on each call), and
#: the decoders depend only on the message classes.
_DECODERS: Final = _Decoders(MESSAGE_CLASSES)


class _MessageTypes(JSONTypeConverter):
    def __init__(self) -> None:
        self._decoders = _DECODERS

    def to_typed_value(self, hint: type, value: Any) -> Any:
        decode = self._decoders.get(hint)
        if decode is None:
            return JSONTypeConverter.Unhandled
        try:
            return decode(value)
        except _NotFast:
            return JSONTypeConverter.Unhandled


_FIELD_NAMES: Final = {
    cls: tuple(f.name for f in dataclasses.fields(cls)) for cls in MESSAGE_CLASSES
}


class _MessageEncoder(AdvancedJSONEncoder):
    """Temporal's encoder; a message is written as a dict of its fields (nested messages
    come back here), which is what ``dataclasses.asdict`` gives, without its deep copy."""

    def default(self, o: Any) -> Any:
        names = _FIELD_NAMES.get(type(o))
        if names is not None:
            return {name: getattr(o, name) for name in names}
        return super().default(o)


class SyncPayloadConverter(CompositePayloadConverter):
    """Temporal's default payload converter, with the sync's messages converted fast."""

    def __init__(self) -> None:
        super().__init__(
            *(
                JSONPlainPayloadConverter(
                    encoder=_MessageEncoder, custom_type_converters=[_MessageTypes()]
                )
                if isinstance(c, JSONPlainPayloadConverter)
                else c
                for c in DefaultPayloadConverter.default_encoding_payload_converters
            )
        )


def with_sync_messages(converter: DataConverter) -> DataConverter:
    """``converter`` converting the sync's messages fast: its payload converter replaced by
    :class:`SyncPayloadConverter` when it is Temporal's default one (a custom one is kept;
    codecs and the failure converter are kept either way)."""
    if converter.payload_converter_class is not DefaultPayloadConverter:
        return converter
    return dataclasses.replace(converter, payload_converter_class=SyncPayloadConverter)


def sync_client(client: Client) -> Client:
    """``client`` (same connection, namespace, interceptors) with :func:`with_sync_messages`
    applied to its data converter: for the sync worker and the coordinator's callers."""
    config = client.config()
    converter = with_sync_messages(config["data_converter"])
    if converter is config["data_converter"]:
        return client
    config["data_converter"] = converter
    return Client(**config)
