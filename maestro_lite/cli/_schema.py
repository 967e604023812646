"""``--schema``: the record schema of an extraction, from a JSON file or a pydantic model."""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from ..errors import UserError

__all__ = ["load_schema"]


def load_schema(spec: str) -> type[BaseModel] | dict[str, Any]:
    """A record schema from ``file.json`` (a JSON schema), ``file.py:Class`` or
    ``package.module:Class`` (a pydantic model).

    Raises:
        UserError: The spec names nothing usable.
    """
    forms = "Use schema.json, models.py:Invoice or mypackage.models:Invoice."
    if spec.endswith(".json"):
        path = Path(spec).expanduser()
        if not path.is_file():
            raise UserError(f"--schema: schema file {spec} does not exist", hint=forms)
        try:
            loaded = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise UserError(f"--schema: cannot read {spec}: {exc}") from None
        if not isinstance(loaded, dict):
            raise UserError(f"--schema: {spec} holds no JSON schema object")
        return loaded
    location, sep, name = spec.rpartition(":")
    if not sep or not location or not name:
        raise UserError(f"--schema: cannot read schema {spec!r}", hint=forms)
    try:
        module = _module(location)
    except UserError:
        raise
    except Exception as exc:  # the user's module failed to import: its own error, one line
        raise UserError(
            f"--schema: cannot import {location!r}: {type(exc).__name__}: {exc}", hint=forms
        ) from None
    found = getattr(module, name, None)
    if not (isinstance(found, type) and issubclass(found, BaseModel)):
        raise UserError(f"--schema: {spec} is not a pydantic model", hint=forms)
    return found


def _module(location: str) -> Any:
    """The module at ``location``: a ``.py`` file, or an importable module name."""
    if not location.endswith(".py"):
        return importlib.import_module(location)
    path = Path(location).expanduser()
    module_spec = importlib.util.spec_from_file_location(path.stem, path)
    if module_spec is None or module_spec.loader is None or not path.is_file():
        raise UserError(f"--schema: no Python file {location}")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[path.stem] = module
    module_spec.loader.exec_module(module)
    return module
