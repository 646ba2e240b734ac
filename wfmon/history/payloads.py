"""Turn Temporal payloads into JSON-ready values, capped in size, never raising.

Markers (plain dicts, so they store as JSON) stand in for what cannot be shown as is:

- ``{"_wfmon": "bytes", "encoding": ..., "size_bytes": n, "base64": ...}`` for bytes that
  are not JSON (``binary/plain``, unknown protobuf types, unknown encodings);
- ``{"_wfmon": "truncated", "encoding": ..., "size_bytes": n, "preview": ...}`` when a
  payload is larger than the limit; ``preview`` is the first bytes as text (JSON
  encodings) or base64, never longer than the limit;
- ``{"_wfmon": "undecodable", "encoding": ..., "error": ...}`` when a payload claims an
  encoding its data does not match.

Payload codecs (encryption, compression) are async and run before the reader: decode
with ``DataConverter.payload_codec.decode`` first when a codec is configured.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable
from typing import Any

import google.protobuf.json_format
import google.protobuf.message
from temporalio.api.common.v1 import Payload
from temporalio.converter import DataConverter, PayloadConverter

#: Default cap on one stored payload (bytes of payload data).
DEFAULT_PAYLOAD_LIMIT = 64 * 1024
MARKER_KEY = "_wfmon"

#: JSON text from which Python's ``json.loads`` can make a NaN or an infinite float: its
#: ``NaN`` / ``Infinity`` / ``-Infinity`` tokens, or a number too large for a float, which
#: takes an exponent of three digits or a run of 200 digits (anything smaller is below
#: 1e299). A superset: the same text inside a string matches too.
_NON_FINITE_TEXT = re.compile(rb"NaN|Infinity|[eE][+-]?\d{3}|\d{200}")


class PayloadDecoder:
    """Decodes payloads with a Temporal payload converter; see the module doc for markers."""

    def __init__(
        self,
        converter: PayloadConverter | None = None,
        limit_bytes: int = DEFAULT_PAYLOAD_LIMIT,
    ) -> None:
        self.converter = converter or DataConverter.default.payload_converter
        self.limit_bytes = limit_bytes
        #: Whether a decoded value may hold a NaN or an infinite float, which JSON cannot
        #: (``json.dumps`` writes them as ``NaN``, ``orjson`` as ``null``). Always true with
        #: a converter of the caller's: it may make floats from any encoding.
        self.non_finite_possible = converter is not None and (
            converter is not DataConverter.default.payload_converter
        )

    def decode_all(self, payloads: Iterable[Payload]) -> list[Any]:
        """Every payload of an argument list, in order."""
        return [self.decode(p) for p in payloads]

    def decode(self, payload: Payload) -> Any:
        encoding = payload.metadata.get("encoding", b"").decode("utf-8", "replace")
        size = len(payload.data)
        if size > self.limit_bytes:
            return self._truncated(payload, encoding, size)
        if (
            not self.non_finite_possible
            and encoding.startswith("json/")
            and _NON_FINITE_TEXT.search(payload.data)
        ):
            self.non_finite_possible = True
        try:
            value = self.converter.from_payload(payload)
        except Exception as exc:  # a payload we cannot decode is shown, not fatal
            return self._fallback(payload, encoding, exc)
        return _json_ready(value, encoding)

    def _truncated(self, payload: Payload, encoding: str, size: int) -> dict[str, Any]:
        if encoding.startswith("json/"):
            preview = payload.data[: self.limit_bytes].decode("utf-8", "replace")
        else:
            # base64 grows by 4/3: keep the preview itself within the limit.
            preview = base64.b64encode(payload.data[: self.limit_bytes * 3 // 4]).decode()
        return {
            MARKER_KEY: "truncated",
            "encoding": encoding,
            "size_bytes": size,
            "preview": preview,
        }

    def _fallback(self, payload: Payload, encoding: str, exc: Exception) -> Any:
        if encoding.startswith("json/"):
            # e.g. json/protobuf of a message type this process does not know: still JSON.
            try:
                return json.loads(payload.data)
            except ValueError:
                return {MARKER_KEY: "undecodable", "encoding": encoding, "error": str(exc)}
        return _bytes_marker(payload.data, encoding)


def _bytes_marker(data: bytes, encoding: str) -> dict[str, Any]:
    return {
        MARKER_KEY: "bytes",
        "encoding": encoding,
        "size_bytes": len(data),
        "base64": base64.b64encode(data).decode(),
    }


def _json_ready(value: Any, encoding: str) -> Any:
    if isinstance(value, bytes | bytearray):
        return _bytes_marker(bytes(value), encoding)
    if isinstance(value, google.protobuf.message.Message):
        return google.protobuf.json_format.MessageToDict(value)
    return value
