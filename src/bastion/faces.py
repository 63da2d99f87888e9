"""Package faces that load their names on first use (PEP 562).

A face (`bastion/<package>/__init__.py`) maps each public name to the module that defines it
and imports it for type checkers only; at run time `lazy_attributes` imports the module when
the name is first read, so importing the face costs nothing until then.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_attributes"]


def lazy_attributes(package: str, exports: Mapping[str, str]) -> Callable[[str], Any]:
    """The module-level `__getattr__` of `package`'s face: `exports` maps a name to its module."""
    namespace = sys.modules[package].__dict__

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value  # read once: later reads do not come here
        return value

    return __getattr__
