"""Options dataclasses read from a mapping or a command's JSON (``--options``): unknown
keys are refused by name, and a value out of range by the dataclass's own checks.
Standard library only."""

from __future__ import annotations

import dataclasses
import json
from typing import TypeVar

Options = TypeVar("Options")


def from_mapping(cls: type[Options], values: dict, kind: str) -> Options:
    """``cls(**values)``, refusing keys that are not fields of ``cls`` (``kind`` names the
    options in the message, e.g. "training")."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown {kind} option(s) {unknown}; known: {sorted(known)}")
    return cls(**values)


def parse_json(text: str, kind: str) -> dict:
    """The JSON object ``text`` (a command's ``--options``), or a ValueError saying why not."""
    try:
        values = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{kind} options are not valid JSON ({error}): {text!r}") from None
    if not isinstance(values, dict):
        raise ValueError(f"{kind} options must be a JSON object, got {text!r}")
    return values
