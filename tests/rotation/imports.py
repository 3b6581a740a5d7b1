"""What a function's shipped source imports (Lambda runs it with its standard library and boto3 only)."""

from __future__ import annotations

import ast
import sys


def outside_the_runtime(source: str) -> set[str]:
    """The top-level modules ``source`` imports that are neither the standard library nor boto3 (with botocore,
    which boto3 is built on)."""
    imported: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    return imported - {"boto3", "botocore", "__future__"} - set(sys.stdlib_module_names)
