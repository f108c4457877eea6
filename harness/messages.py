"""What the parent and a worker process say to each other, and the implementation catalogue.

One JSON object per line; each message is a frozen dataclass here, encoded by ``to_json`` and
read back by ``from_json`` (an unknown or missing field is an error at once, in the process that
reads it, not a KeyError deep in a subprocess). Arrays never travel in messages: an accuracy
task names ``.npz`` files, a timing task names a shape and a seed.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar


def _fields(cls: type, data: Mapping[str, Any]) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names - {"type"}
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown fields {sorted(unknown)}")
    return {k: v for k, v in data.items() if k in names}


@dataclass(frozen=True)
class ImplInfo:
    """An implementation as the parent knows it: everything but the function (which lives, and
    runs, only in a worker)."""

    name: str
    op: str
    framework: str
    dtypes: tuple[str, ...]
    devices: tuple[str, ...]
    description: str = ""
    options: tuple[str, ...] = ()
    differentiable: bool = True
    source: str = "builtin"

    def to_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "dtypes": list(self.dtypes),
                "devices": list(self.devices), "options": list(self.options)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ImplInfo:
        kw = _fields(cls, data)
        for name in ("dtypes", "devices", "options"):
            if name in kw:
                kw[name] = tuple(kw[name])
        return cls(**kw)


@dataclass(frozen=True)
class Catalog:
    """Every implementation found (built-ins and plugins) and the errors of rejected ones."""

    implementations: tuple[ImplInfo, ...]
    errors: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"implementations": [i.to_json() for i in self.implementations],
                "errors": list(self.errors)}

    @classmethod
    def from_json(cls, data: Catalog | Mapping[str, Any]) -> Catalog:
        if isinstance(data, Catalog):
            return data
        return cls(tuple(i if isinstance(i, ImplInfo) else ImplInfo.from_json(i)
                         for i in data.get("implementations", ())),
                   tuple(data.get("errors", ())))


@dataclass(frozen=True)
class Hello:
    """The worker's first line: whether its framework and device are usable, what it serves."""

    TYPE: ClassVar[str] = "hello"
    available: bool
    reason: str
    implementations: tuple[ImplInfo, ...] = ()
    errors: tuple[str, ...] = ()
    settings: Mapping[str, Any] = field(default_factory=dict)
    pid: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"type": self.TYPE, "available": self.available, "reason": self.reason,
                "implementations": [i.to_json() for i in self.implementations],
                "errors": list(self.errors), "settings": dict(self.settings), "pid": self.pid}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Hello:
        kw = _fields(cls, data)
        kw["implementations"] = tuple(ImplInfo.from_json(i)
                                      for i in kw.get("implementations", ()))
        kw["errors"] = tuple(kw.get("errors", ()))
        return cls(**kw)

    @classmethod
    def failed(cls, reason: str) -> Hello:
        return cls(False, reason)


@dataclass(frozen=True)
class AccuracyTask:
    """Run one implementation on one case's inputs (an .npz) and write its output (an .npz)."""

    TYPE: ClassVar[str] = "accuracy"
    impl: str
    pass_: str
    dtype: str
    device: str
    inputs_path: str
    out_path: str
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TimingTask:
    """Time one implementation on inputs the worker generates from ``shape`` and ``seed``.

    ``copy`` is the copy roofline the run measured first in this framework (the worker reuses it
    instead of measuring again, so records and run.json hold the same number)."""

    TYPE: ClassVar[str] = "timing"
    impl: str
    op: str
    pass_: str
    dtype: str
    device: str
    shape: tuple[int, ...]
    seed: int
    timing: Mapping[str, Any] = field(default_factory=dict)
    fidelity: bool = False
    copy: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class RooflineTask:
    """Measure the device's copy roofline in this framework (the throughput planner's first
    stage: every framework's copy is known before any timing record is written)."""

    TYPE: ClassVar[str] = "roofline"
    device: str
    timing: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Stop:
    TYPE: ClassVar[str] = "stop"


Request = AccuracyTask | TimingTask | RooflineTask | Stop
_REQUESTS: dict[str, type] = {c.TYPE: c for c in (AccuracyTask, TimingTask, RooflineTask, Stop)}
_RENAMED = {"pass_": "pass"}  # JSON keys that are Python keywords


def encode(message: Request | Hello) -> str:
    """One protocol line (no newline)."""
    if isinstance(message, Hello):
        return json.dumps(message.to_json())
    data = {_RENAMED.get(k, k): v for k, v in dataclasses.asdict(message).items()}
    if "shape" in data:
        data["shape"] = list(data["shape"])
    return json.dumps({"type": message.TYPE, **data})


def decode_request(line: str) -> Request:
    """A request line, as the worker reads it."""
    data = json.loads(line)
    cls = _REQUESTS.get(data.get("type"))
    if cls is None:
        raise ValueError(f"unknown message type {data.get('type')!r}")
    data = {("pass_" if k == "pass" else k): v for k, v in data.items()}
    kw = _fields(cls, data)
    if "shape" in kw:
        kw["shape"] = tuple(int(v) for v in kw["shape"])
    message: Request = cls(**kw)
    return message


# Statuses of a reply: the worker's own (ok, error, unsupported, unavailable) and the parent's
# when the worker could not answer (crash, timeout).
@dataclass(frozen=True)
class Reply:
    """The answer to one request. ``data`` holds the request type's payload: an accuracy
    task's output shape and dtype; a timing task's record fields, roofline, malloc policy and
    fidelity check; a roofline task's copy measurement."""

    status: str
    message: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"type": "reply", "status": self.status, "message": self.message,
                "data": dict(self.data)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Reply:
        return cls(str(data.get("status", "error")), str(data.get("message", "")),
                   dict(data.get("data") or {}))

