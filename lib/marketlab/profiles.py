"""Conf profiles: named sets of parameter overrides (``conf/profiles/<name>.yaml``).

A profile is a partial conf tree (e.g. cheaper model settings for a smoke run) that any
environment conf can take. It is flattened into the same ``dotted.key=value`` overrides
as ``--set``, so a profile and a command line say the same thing, and the submitted
cluster command carries it explicitly.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from marketlab.config import ConfigError


def flatten_overrides(tree: dict[str, Any], prefix: str = "") -> list[str]:
    """``{"a": {"b": 1}}`` -> ``["a.b=1"]``; lists and scalars are leaves (JSON is YAML)."""
    out: list[str] = []
    for key, value in tree.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict) and value:
            out.extend(flatten_overrides(value, path))
        else:
            out.append(f"{path}={json.dumps(value)}")
    return out


def profile_overrides(profile: str | None, conf: str | Path) -> list[str]:
    """Overrides of a profile, by name (``conf/profiles/<name>.yaml`` next to ``conf``) or path.

    Raises:
        ConfigError: Unknown profile or not a mapping.
    """
    if not profile:
        return []
    path = Path(profile)
    if not path.suffix:
        path = Path(conf).resolve().parent / "profiles" / f"{profile}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in (Path(conf).resolve().parent / "profiles").glob("*.yaml"))
        raise ConfigError(f"profile '{profile}' not found ({path}); known profiles: {known}")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a profile must be a mapping")
    return flatten_overrides(data)
