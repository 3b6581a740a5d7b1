"""Refusing an env change that the layers deployed after the one it changes would not survive in one `up`.

A change to one layer's env key can delete what later layers' resources still use (a VPC their network interfaces
sit in, a security group their rules name). The layers run in order, so the changed layer fails on them and the later
layers are skipped, left on what is gone. The orchestrator refuses such a run before any layer starts, naming the key
and the deployed layers. Standard library and the env schema only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from shared.envs import EnvConfig, env_path
from shared.errors import ConfigError

#: a layer's deployed outputs (None: no stack)
Read = Callable[[str], Mapping[str, Any] | None]


def refuse_while_deployed(env: EnvConfig, key: str, layers: Iterable[str], read: Read,
                          reason: Callable[[str], str]) -> list[ConfigError]:
    """One error on the env file's ``key`` where any of ``layers`` is deployed (``read(layer)`` answers outputs), its
    text ``reason(them)``, ``them`` naming the deployed ones in order ("messaging and compute"); [] where none is."""
    deployed = [layer for layer in layers if read(layer)]
    if not deployed:
        return []
    them = deployed[-1] if len(deployed) == 1 else f"{', '.join(deployed[:-1])} and {deployed[-1]}"
    return [ConfigError(str(env_path(env.name)), key, reason(them))]
