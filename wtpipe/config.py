"""Typed configs: dataclasses loaded from YAML, with dotted ``key=value`` overrides.

YAML is parsed with ``yaml.safe_load`` (never evaluated); every key must name a field, and every
value must fit the field's type, or a :class:`ConfigError` names the key and the problem. Fields
typed :data:`PathStr` get ``~`` and ``$VARS`` expanded, as a shell would (``key=~/x`` on a command
line reaches the program unexpanded).
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import io
import os
import re
import tokenize
import types
import typing
from typing import Any, TypeVar

import yaml

T = TypeVar("T")
PathStr = typing.NewType("PathStr", str)  # a file or folder: ~ and $VARS are expanded when loaded


class ConfigError(ValueError):
    """A config that cannot be used; the message names the key."""


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


_YAML11_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def _convert(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``tp`` (converting YAML lists to tuples)."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {type(value).__name__} {value!r}")
        if hasattr(tp, "variant"):  # a section whose class its own keys choose (``method.name``)
            try:
                tp = tp.variant(value)
            except ValueError as err:
                raise ConfigError(f"{key}.{err}") from None
        return _build(tp, value, key)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _convert(value, option, key)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(
            errors[0] if len(errors) == 1 else f"{key}: {value!r} fits none of {_type_name(tp)}"
        )
    if origin is typing.Literal:
        if isinstance(value, bool):  # YAML 1.1 reads no/off/yes/on as booleans: take the word back
            words = ("no", "off", "false") if value is False else ("yes", "on", "true")
            value = next((w for w in words if w in typing.get_args(tp)), value)
        if value not in typing.get_args(tp):
            choices = ", ".join(repr(c) for c in typing.get_args(tp))
            raise ConfigError(f"{key}: {value!r} is not one of {choices}")
        return value
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {type(value).__name__} {value!r}")
        args = typing.get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ConfigError(f"{key}: expected {len(args)} items, got {len(value)}")
            items = [_convert(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args))]
        else:
            item_type = args[0] if args else Any
            items = [_convert(v, item_type, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if tp is Any:
        return value
    if tp is PathStr:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a path, got {type(value).__name__} {value!r}")
        return os.path.expandvars(os.path.expanduser(value))
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str) and _YAML11_FLOAT.fullmatch(value.strip()):
        return float(value)  # YAML 1.1 reads 1e-6 (no dot) as a string
    if tp in (int, float) and isinstance(value, bool):
        raise ConfigError(f"{key}: expected {tp.__name__}, got bool {value!r}")
    if isinstance(tp, type) and not isinstance(value, tp):
        raise ConfigError(f"{key}: expected {tp.__name__}, got {type(value).__name__} {value!r}")
    return value


def _build(cls: type[T], data: dict[str, Any], prefix: str = "") -> T:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for key in data:
        if key not in names:
            full = f"{prefix}.{key}" if prefix else key
            near = difflib.get_close_matches(key, names, n=1)
            hint = f" (did you mean {prefix + '.' if prefix else ''}{near[0]}?)" if near else ""
            raise ConfigError(f"unknown config key '{full}'{hint}")
    values = {k: _convert(v, hints[k], f"{prefix}.{k}" if prefix else k) for k, v in data.items()}
    try:
        return cls(**values)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{prefix or cls.__name__}: {err}") from None


def _set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = data
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override {dotted}: '{part}' is not a section")
        node = child
    node[parts[-1]] = value


def parse_overrides(overrides: list[str]) -> list[tuple[str, Any]]:
    """``["optim.lr=1e-3", "data.shards=/x"]`` -> [(key, YAML-parsed value)]."""
    parsed = []
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {item!r} is not key=value (e.g. optim.lr=0.001)")
        try:
            value = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError as err:
            raise ConfigError(f"override {item!r}: {' '.join(str(err).split())}") from None
        parsed.append((key.strip(), value))
    return parsed


def load_config(cls: type[T], path: str | None = None, overrides: list[str] | None = None) -> T:
    """Defaults of ``cls``, updated by the YAML file at ``path``, then by dotted overrides."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            with open(path, encoding="utf-8") as handle:
                loaded = yaml.safe_load(handle)
        except FileNotFoundError:
            raise ConfigError(f"{path}: no such config file") from None
        except yaml.YAMLError as err:
            raise ConfigError(f"{path}: not valid YAML ({' '.join(str(err).split())})") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of sections")
        data = loaded or {}
    for key, value in parse_overrides(overrides or []):
        _set_dotted(data, key, value)
    return _build(cls, data)


def resumable(default: Any) -> Any:
    """A setting of how a run is executed or observed (workers, paths, logging), not of what it
    computes: a checkpoint resumes under another value of it (:func:`differences`)."""
    return dataclasses.field(default=default, metadata={"resumable": True})


def differences(config: Any, saved: dict[str, Any]) -> list[str]:
    """``section.key: saved -> current`` for every setting of the sectioned ``config`` that changes
    the computation (fields not declared :func:`resumable`). A key absent from ``saved`` (added
    since it was written) counts as its default, which is what older code did."""
    diffs, defaults = [], to_dict(type(config)())
    for section in dataclasses.fields(config):
        value = getattr(config, section.name)
        own = {
            **to_dict(type(value)()),
            **defaults[section.name],
        }  # the section's class, as the config builds it
        for item in dataclasses.fields(value):
            if item.metadata.get("resumable"):
                continue
            now = to_dict(value)[item.name]
            old = saved.get(section.name, {}).get(item.name, own[item.name])
            if old != now:
                diffs.append(f"{section.name}.{item.name}: {old} -> {now}")
    return diffs


def to_dict(config: Any) -> dict[str, Any]:
    """Plain nested dict (tuples as lists) for saving next to a run."""

    def plain(value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return plain(dataclasses.asdict(config))


def from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Rebuild a config from :func:`to_dict` output (checked like a YAML file)."""
    return _build(cls, data)


def to_yaml(config: Any) -> str:
    return yaml.safe_dump(to_dict(config), sort_keys=False)


def field_help(cls: type) -> dict[str, str]:
    """Each field's trailing ``# comment`` in the class source: one place for the meaning of a key."""
    helps: dict[str, str] = {}
    for base in reversed(cls.__mro__[1:]):  # inherited fields keep their help
        if dataclasses.is_dataclass(base):
            helps.update(field_help(base))
    line_tokens: dict[int, list[tokenize.TokenInfo]] = {}
    for token in tokenize.generate_tokens(io.StringIO(inspect.getsource(cls)).readline):
        line_tokens.setdefault(token.start[0], []).append(token)
    for tokens in line_tokens.values():
        code = [
            t
            for t in tokens
            if t.type not in (tokenize.INDENT, tokenize.DEDENT, tokenize.NL, tokenize.NEWLINE)
        ]
        if (
            len(code) > 2
            and code[0].type == tokenize.NAME
            and code[1].string == ":"
            and code[-1].type == tokenize.COMMENT
        ):
            helps[code[0].string] = code[-1].string.lstrip("#").strip()
    return helps


def _flow(value: Any) -> str:
    """One value as inline YAML (strings quoted only where YAML needs it)."""
    return yaml.safe_dump([value], default_flow_style=True, width=10**6).strip()[1:-1]


def reference_table(section: Any, prefix: str = "") -> list[str]:
    """A Markdown table of a config section's keys: default, meaning (the same help as
    :func:`describe`), and whether a run may resume under another value. Nested sections
    (a job file's ``resources``) are listed with dotted keys."""
    rows = ["| key | default | meaning |", "| --- | --- | --- |"]
    helps = field_help(type(section))
    values = to_dict(section)
    for item in dataclasses.fields(section):
        value = getattr(section, item.name)
        if dataclasses.is_dataclass(value):
            rows += reference_table(value, f"{prefix}{item.name}.")[2:]
            continue
        meaning = helps.get(item.name, "").replace("|", "\\|")
        if item.metadata.get("resumable"):
            meaning += " *(may change on resume)*"
        default = _flow(values[item.name]).replace("|", "\\|")
        rows.append(f"| `{prefix}{item.name}` | `{default}` | {meaning} |")
    return rows


def describe(config: Any) -> str:
    """The resolved config as YAML that ``--config`` reads back, each key followed by its help."""
    lines = []
    for section in dataclasses.fields(config):
        value = getattr(config, section.name)
        lines.append(f"{section.name}:")
        helps = field_help(type(value))
        for item in dataclasses.fields(value):
            text = f"  {item.name}: {_flow(to_dict(value)[item.name])}"
            lines.append(f"{text}  # {helps[item.name]}" if item.name in helps else text)
    return "\n".join(lines) + "\n"
