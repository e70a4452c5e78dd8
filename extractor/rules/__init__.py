"""Rule files (data only) shipped in this package, loaded and validated in one place.

Each `extractor/rules/<name>.json` is read with importlib.resources and validated by the
pydantic model its consumer passes in (with extra="forbid"), so a typo in a rule file
fails loudly at load time, as a RuleError, instead of silently matching nothing.
"""
from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from extractor.errors import RuleError

M = TypeVar("M", bound=BaseModel)


class Rule(BaseModel):
    """Base of every rule-file model: an unknown key is an error, not ignored."""

    model_config = ConfigDict(extra="forbid")


class Flagged(Rule):
    """A pattern with examples of text it must (true) or must not (false) match."""

    pattern: str
    examples: list[tuple[str, bool]]


@lru_cache(maxsize=None)
def _read(name: str) -> object:
    try:
        raw = resources.files(__name__).joinpath(f"{name}.json").read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise RuleError(f"rule file {name}.json not found in extractor/rules") from e
    try:
        return json.loads(raw)
    except json.JSONDecodeError as e:
        raise RuleError(f"rules/{name}.json: invalid JSON at line {e.lineno}: {e.msg}") from e


def load_rules(name: str, model: type[M]) -> M:
    """Read extractor/rules/<name>.json and validate it with `model` (RuleError on failure)."""
    try:
        return model.model_validate(_read(name))
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise RuleError(f"rules/{name}.json: {where}: {first['msg']}") from e


__all__ = ["Flagged", "Rule", "load_rules"]
