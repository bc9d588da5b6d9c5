"""The config read as the JSON schema's types (``config/schema.yaml``)."""

from __future__ import annotations

import re

from . import ConfigError


def schema_at(root: dict, schema: dict) -> dict:
    """The schema itself, with its local ``$ref``s (``#/a/b``) followed."""
    while "$ref" in schema:
        ref = schema["$ref"]
        if not ref.startswith("#/"):
            raise ConfigError(f"config/schema.yaml: only local $refs are supported, not {ref!r}")
        schema = root
        for part in ref[2:].split("/"):
            schema = schema[part]
    return schema


def read_as_schema_type(text: str, types: list[str]):
    """``text`` read as the first of the schema's ``types`` it spells, or itself."""
    if "string" in types:
        return text
    for kind in types:
        if kind == "integer" and re.fullmatch(r"[+-]?[0-9]+", text.strip()):
            return int(text)
        if kind == "number":
            try:
                return float(text)
            except ValueError:
                pass
        if kind == "boolean" and text.strip().lower() in ("true", "false"):
            return text.strip().lower() == "true"
        if kind == "null" and text.strip() in ("null", "~"):
            return None
    return text


def command_line_typed(value, schema: dict, root: dict):
    """``value`` with the strings that Snakemake's ``--config`` makes of YAML's scalars read
    as the schema's types: ``--config budgets=[1024]`` or ``'train={hidden: [64, 64]}'``
    parse with YAML's base loader, which reads every item of a list or a mapping as a
    string. Strings that spell no type the schema allows are left for the validation to
    refuse, naming the key."""
    schema = schema_at(root, schema)
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        return {
            key: command_line_typed(item, properties.get(key, extra if isinstance(extra, dict) else {}), root)
            for key, item in value.items()
        }
    if isinstance(value, list):
        items = schema.get("items", {})
        return [command_line_typed(item, items, root) for item in value]
    if isinstance(value, str):
        types = schema.get("type", [])
        return read_as_schema_type(value, [types] if isinstance(types, str) else types)
    return value
