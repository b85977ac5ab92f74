"""Constraints declared next to config fields, as dataclass field metadata, and the check that reads them.

    lr: float = in_range(1e-4, 0.0, INF, "()")          # a number in an interval ("[]" closed, "(" / ")" open ends)
    loss: str = one_of("huber", "huber", "l2")           # one of a few names
    guidance_min: float = in_range(1.0, 1.0, INF, at_most="guidance_max")   # not above a sibling field
    istft_phase_iters: int = in_range(0, 0, INF, only_with=("generator", "istft"))  # only with a sibling's value

Every config dataclass (the experiment schema, the mel settings, each stage's ``model`` section) declares its
constraints this way, so a constraint cannot name a field that does not exist; the siblings named by ``at_most``
and ``only_with`` are checked to exist by tests/test_config.py. ``check`` walks a validated OmegaConf config and
raises ``ValueError`` naming the dotted key, the value and the bound. A leaf module: it imports nothing of the
project, so networks' config dataclasses can use it.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Iterator

INF = float("inf")
KEY = "constraints"


def in_range(default: Any, low: float, high: float, ends: str = "[]", **more: Any) -> Any:
    """A field whose value (when set and not null) lies in the interval low..high; ``ends`` says which ends are
    closed ("[", "]") or open ("(", ")")."""
    return _field(default, {"range": (low, high, ends), **_more(more)})


def one_of(default: Any, *names: str, **more: Any) -> Any:
    """A field whose value (when a string) is one of ``names``."""
    return _field(default, {"choices": names, **_more(more)})


def only_with(default: Any, key: str, value: Any) -> Any:
    """A field that may only be set to a true or non-zero value while the sibling field ``key`` is ``value``."""
    return _field(default, {"only_with": (key, value)})


def _more(more: dict[str, Any]) -> dict[str, Any]:
    unknown = set(more) - {"only_with", "at_most"}
    if unknown:
        raise TypeError(f"unknown constraint(s): {', '.join(sorted(unknown))}")
    return more


def _field(default: Any, constraints: dict[str, Any]) -> Any:
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata={KEY: constraints})
    return dataclasses.field(default=default, metadata={KEY: constraints})


def declared(cls: type) -> Iterator[tuple[str, dict[str, Any]]]:
    """(field name, constraints) of every constrained field of the dataclass ``cls`` (not of nested ones)."""
    for f in dataclasses.fields(cls):
        if KEY in f.metadata:
            yield f.name, f.metadata[KEY]


def check(node: Any, prefix: str = "") -> None:
    """Raise ``ValueError`` for the first constraint ``node`` (a structured OmegaConf config of a dataclass)
    breaks, naming the dotted key (``prefix`` + field). Nested config dataclasses are checked too."""
    from omegaconf import DictConfig, OmegaConf

    cls = OmegaConf.get_type(node)
    if not dataclasses.is_dataclass(cls):
        return

    def value_of(name: str) -> Any:
        return OmegaConf.select(node, name, default=None)

    for f in dataclasses.fields(cls):
        value = value_of(f.name)
        if isinstance(value, DictConfig):
            check(value, f"{prefix}{f.name}.")
            continue
        rules = f.metadata.get(KEY)
        if rules:
            _check_field(f"{prefix}{f.name}", value, rules, value_of, prefix)


def _check_field(key: str, value: Any, rules: dict[str, Any], sibling: Callable[[str], Any], prefix: str) -> None:
    if "choices" in rules and isinstance(value, str) and value not in rules["choices"]:
        raise ValueError(f"{key}={value!r} is unknown (one of {', '.join(rules['choices'])})")
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if "range" in rules and number:
        low, high, (left, right) = rules["range"]
        above = value > low if left == "(" else value >= low
        below = value < high if right == ")" else value <= high
        if not (above and below) or value != value:  # value != value: NaN
            raise ValueError(f"{key}={value} is out of range (must be in {left}{low}, {high}{right})")
    if "at_most" in rules and number:
        other = sibling(rules["at_most"])
        if isinstance(other, (int, float)) and value > other:
            raise ValueError(f"{key}={value} is above {prefix}{rules['at_most']}={other}")
    if "only_with" in rules and value:
        other, needed = rules["only_with"]
        actual = sibling(other)
        if actual != needed:
            raise ValueError(f"{key}={value} needs {prefix}{other}={needed} (it is {actual})")
