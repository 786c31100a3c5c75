"""A batch of metric samples as an agent sends it to `POST /api/v1/metrics`:
parsed, checked rule by rule, and turned into COPY's text format.

Parsed by orjson, about twice as fast as the standard library on a
1 MB body; what it refuses (NaN, Infinity, lone surrogates, numbers too large
for a double) goes on to json.loads, so every such body gets the same precise
answer as before. One difference: orjson reads an integer beyond 64 bits as
the nearest double, so such a number in dims is stored rounded (a value was
always stored as a double anyway).

Checked by hand rather than by a pydantic model: at 10,000 samples a request
this loop costs a few times less than the model, and the speed of ingest is
what it is for. Any broken rule rejects the whole batch."""

from __future__ import annotations

import gc
import json
import math
import re
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import orjson

from odooops.errors import InvalidInput, PayloadTooLarge

MAX_SAMPLES = 10_000
# 10,000 samples with a few dims each are about 1 MiB; this leaves room for
# long dims without letting one request hold the server's memory.
MAX_BODY_BYTES = 16 * 1024 * 1024
MAX_FUTURE = timedelta(minutes=5)
METRIC = re.compile(r"[a-z0-9_.]{1,128}")
MAX_DIMS = 32
MAX_DIM_KEY = 64
MAX_DIM_TEXT = 256

BATCH_FIELDS = frozenset({"project_id", "branch_id", "ts", "samples"})
SAMPLE_FIELDS = frozenset({"metric", "value", "dims", "ts"})
NO_VALUE = "\\N"  # COPY's NULL


@dataclass(frozen=True)
class Batch:
    project_id: UUID
    branch_id: UUID | None
    ts: datetime
    count: int
    # one line per sample: ts (NULL: the batch's), metric, value, and dims as
    # the 1-based position of its JSON text in `dims` (NULL: none)
    copy: str
    # each distinct dims of the batch once, as JSON: a batch repeats the same
    # few, and PostgreSQL then parses each once instead of once a sample
    dims: list[str]


def parse(body: bytes, now: datetime | None = None) -> Batch:
    """The batch in `body`, or InvalidInput / PayloadTooLarge saying what is wrong."""
    with _no_gc():
        return _parse(body, now)


@contextmanager
def _no_gc():
    """A batch is tens of thousands of new objects, all acyclic; each
    collection their allocation triggers would walk the server's whole heap
    (FastAPI's and pydantic's objects included): that made parsing five times
    slower in the server than alone. Collected as usual afterwards."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _parse(body: bytes, now: datetime | None) -> Batch:
    if len(body) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"a metrics request is at most {MAX_BODY_BYTES // (1024 * 1024)} MiB")
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        try:  # the precise answer (e.g. samples[3].value: no NaN) rather than a parser's
            doc = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidInput(f"the body is not JSON: {exc}") from None
    if type(doc) is not dict:
        raise InvalidInput("the body is a JSON object with project_id, ts and samples")
    _no_unknown(doc, BATCH_FIELDS, "")
    latest = (now or datetime.now(UTC)) + MAX_FUTURE
    samples = doc.get("samples")
    if type(samples) is not list:
        raise InvalidInput("samples: a list of {metric, value, dims} is required")
    if len(samples) > MAX_SAMPLES:
        raise PayloadTooLarge(f"at most {MAX_SAMPLES} samples a request, not {len(samples)}")
    project_id = _uuid(doc.get("project_id"), "project_id")
    branch_id = None if doc.get("branch_id") is None else _uuid(doc["branch_id"], "branch_id")
    ts = _timestamp(doc.get("ts"), "ts", latest)
    copy, dims = _copy_lines(samples, latest)
    return Batch(project_id=project_id, branch_id=branch_id, ts=ts, count=len(samples), copy=copy, dims=dims)


def _copy_lines(samples: list, latest: datetime) -> tuple[str, list[str]]:
    try:
        return _common_lines(samples)
    except _Unsure:
        return _checked_lines(samples, latest)


class _Unsure(Exception):
    """The fast path met something it does not handle: the careful one decides."""


def _common_lines(samples: list) -> tuple[str, list[str]]:
    """The lines of a batch of the common shape (every sample {metric, value}
    or every one {metric, value, dims}, dims all strings, no ts of its own),
    checked a column at a time: each distinct metric name and dims once, the
    values by one sum (any NaN or infinity makes it NaN or infinite). It
    accepts only what _checked_lines accepts, and writes the same lines; on
    anything else, or any doubt, it leaves the batch to _checked_lines."""
    try:
        if set(map(type, samples)) - {dict}:
            raise _Unsure
        sizes = set(map(len, samples))
        metrics = [s["metric"] for s in samples]
        values = [s["value"] for s in samples]
        if sizes == {3}:
            dims = [() if s["dims"] is None else tuple(s["dims"].items()) for s in samples]
        elif sizes <= {2}:
            dims = [()] * len(samples)
        else:
            raise _Unsure
        if any(type(m) is not str or METRIC.fullmatch(m) is None for m in set(metrics)):
            raise _Unsure
        kinds = set(map(type, values))
        if kinds - {float, int}:
            raise _Unsure  # strings, booleans (not ints here), nulls, …
        if int in kinds:
            values = [float(v) for v in values]
        if not math.isfinite(sum(values)):
            raise _Unsure  # a NaN, an infinity, or finite values whose sum overflows
        # in order of first appearance, so both paths number them alike
        distinct = [key for key in dict.fromkeys(dims) if key]
        for key in distinct:
            _common_dims_check(key)
    except (KeyError, TypeError, AttributeError, OverflowError):  # unhashable, missing, too large: not common
        raise _Unsure from None
    refs = {key: str(n) for n, key in enumerate(distinct, 1)}
    refs[()] = NO_VALUE
    texts = [json.dumps(dict(key), separators=(",", ":")) for key in distinct]
    # all values written by one call in C (the shortest text that reads back
    # as the same double, like repr) rather than one repr each: half the time
    values = orjson.dumps(values)[1:-1].decode().split(",")
    rows = zip(metrics, values, dims, strict=False)  # no samples: values is [""]
    return "".join([f"{NO_VALUE}\t{m}\t{v}\t{refs[d]}\n" for m, v, d in rows]), texts


def _common_dims_check(items: tuple) -> None:
    if len(items) > MAX_DIMS or any(
            type(v) is not str or len(v) > MAX_DIM_TEXT or "\x00" in v
            or not 0 < len(k) <= MAX_DIM_KEY or "\x00" in k for k, v in items):
        raise _Unsure


def _checked_lines(samples: list, latest: datetime) -> tuple[str, list[str]]:
    """The lines of any batch, checked sample by sample: the first broken
    rule is reported with the sample's index."""
    lines: list[str] = []
    append = lines.append  # names bound once: this loop is the hot path
    dims_ref: dict[tuple, str] = {}
    texts: list[str] = []
    metric_ok = METRIC.fullmatch
    isfinite = math.isfinite
    float_text = orjson.dumps  # as _common_lines writes it
    for i, s in enumerate(samples):
        if type(s) is not dict:
            raise InvalidInput(f"samples[{i}]: a sample is an object with metric, value and dims")
        if not s.keys() <= SAMPLE_FIELDS:
            _no_unknown(s, SAMPLE_FIELDS, f"samples[{i}].")
        metric = s.get("metric")
        if type(metric) is not str or metric_ok(metric) is None:
            raise InvalidInput(f"samples[{i}].metric: a metric name is 1 to 128 of a-z, 0-9, '_' and '.'")
        value: Any = s.get("value")  # its type is checked below, by identity: the hot path
        kind = type(value)
        if kind is int:
            value = _int_value(value, i)
        elif kind is not float or not isfinite(value):
            raise InvalidInput(f"samples[{i}].value: a finite number is required (no NaN or Infinity)")
        ts = NO_VALUE if s.get("ts") is None else _timestamp(s["ts"], f"samples[{i}].ts", latest).isoformat()
        dims = s.get("dims")
        if dims:
            dims = _dims_ref(dims, dims_ref, texts, i)
        elif dims is None or dims == {}:
            dims = NO_VALUE
        else:
            raise InvalidInput(f"samples[{i}].dims: dims is a flat JSON object")
        append(f"{ts}\t{metric}\t{float_text(value).decode()}\t{dims}\n")
    return "".join(lines), texts


def _dims_ref(dims: object, seen: dict[tuple, str], texts: list[str], i: int) -> str:
    """The dims' position in `texts` (1-based), added there as JSON if new. An
    agent sends the same few dims again and again, so each distinct one is
    checked and serialised once per batch; the key holds the types too, since
    True == 1 == 1.0 in a tuple."""
    if type(dims) is not dict:
        raise InvalidInput(f"samples[{i}].dims: dims is a flat JSON object")
    try:
        key = (*dims.items(), *map(type, dims.values()))
        ref = seen.get(key)
    except TypeError:  # a list or an object inside: not flat
        raise InvalidInput(
            f"samples[{i}].dims: dims is flat: each value a string, number, true, false or null") from None
    if ref is None:
        _check_dims(dims, i)
        texts.append(json.dumps(dims, separators=(",", ":")))
        ref = seen[key] = str(len(texts))
    return ref


def _check_dims(dims: dict, i: int) -> None:
    if len(dims) > MAX_DIMS:
        raise InvalidInput(f"samples[{i}].dims: at most {MAX_DIMS} dims a sample")
    for name, value in dims.items():
        if not 0 < len(name) <= MAX_DIM_KEY or "\x00" in name:
            raise InvalidInput(f"samples[{i}].dims: a dim name is 1 to {MAX_DIM_KEY} characters")
        kind = type(value)
        if kind is str:
            if len(value) > MAX_DIM_TEXT or "\x00" in value:
                raise InvalidInput(f"samples[{i}].dims.{name}: a dim value is at most {MAX_DIM_TEXT} characters")
        elif kind is float and not math.isfinite(value):
            raise InvalidInput(f"samples[{i}].dims.{name}: a finite number is required (no NaN or Infinity)")
        elif kind not in (int, float, bool) and value is not None:
            raise InvalidInput(f"samples[{i}].dims.{name}: a dim value is a string, number, true, false or null")


def _int_value(value: int, i: int) -> float:
    try:
        return float(value)
    except OverflowError:
        raise InvalidInput(f"samples[{i}].value: a finite number is required (this one is too large)") from None


def _timestamp(value: object, where: str, latest: datetime) -> datetime:
    if type(value) is not str:
        raise InvalidInput(f"{where}: an ISO 8601 timestamp with a timezone is required")
    try:
        ts = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{where}: {value[:40]!r} is not an ISO 8601 timestamp") from None
    if ts.tzinfo is None:
        raise InvalidInput(f"{where}: the timestamp needs a timezone (e.g. Z or +00:00)")
    if ts > latest:
        raise InvalidInput(f"{where}: more than {MAX_FUTURE.seconds // 60} minutes in the future")
    return ts


def _uuid(value: object, where: str) -> UUID:
    if type(value) is str:
        try:
            return UUID(value)
        except ValueError:
            pass
    raise InvalidInput(f"{where}: a UUID is required")


def _no_unknown(doc: dict, known: frozenset, where: str) -> None:
    unknown = sorted(set(doc) - known)
    if unknown:
        raise InvalidInput(f"{where}{unknown[0]}: unknown field (known: {', '.join(sorted(known))})")
