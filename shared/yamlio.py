"""YAML reading with errors that name the file and the place."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from shared.errors import ConfigError

# libyaml's parser when PyYAML was built with it (the wheels are): the same safe schema, ~10x faster
# than the pure-Python one -- env, catalog and Pulumi project files are read on every synth.
_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class DuplicateKeyError(yaml.constructor.ConstructorError):
    """A mapping names the same key twice. YAML 1.2 forbids it; PyYAML would keep the last value
    silently (a second ``region:`` would move an env to another region)."""

    def __init__(self, key: Any, first: yaml.Mark, second: yaml.Mark) -> None:
        super().__init__(None, None, f"duplicate key {key!r} (first on line {first.line + 1})", second)
        self.key = key
        self.first_line = first.line + 1
        self.line = second.line + 1


#: The most values a YAML document may stand for once its aliases are expanded. An env file has a few hundred, the
#: benchmark's catalog of hundreds of services tens of thousands; anchors of aliases of anchors ("billion laughs")
#: reach 10**9 from a dozen lines, which the loader shares but every consumer walks (the schema's messages repr it).
MAX_EXPANDED_VALUES = 1_000_000


def _expanded_size(root: yaml.Node) -> int:
    """How many nodes ``root`` stands for with every alias expanded (a node reached twice counts twice); a node
    inside itself (``&a [*a]``) counts as :data:`MAX_EXPANDED_VALUES` + 1. Iterative: nesting depth is the file's."""
    sizes: dict[int, int] = {}
    pending: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in sizes:
            continue
        children: list[yaml.Node] = []
        if isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [part for pair in node.value for part in pair]
        if children_done:
            pending.discard(id(node))
            total = 1 + sum(sizes[id(child)] for child in children)
            sizes[id(node)] = min(total, MAX_EXPANDED_VALUES + 1)
            continue
        if id(node) in pending:  # reached again before its own size is known: an alias inside its anchor
            return MAX_EXPANDED_VALUES + 1
        pending.add(id(node))
        stack.append((node, True))
        stack.extend((child, False) for child in children if id(child) not in sizes)
    return sizes[id(root)]


class SafeLoader(_BaseLoader):  # type: ignore[valid-type,misc]
    """The safe schema, refusing duplicate keys in every mapping and documents whose aliases expand too far."""

    def construct_document(self, node: yaml.Node) -> Any:
        if _expanded_size(node) > MAX_EXPANDED_VALUES:
            raise yaml.constructor.ConstructorError(
                None, None, f"its aliases (*name of an &name) expand it to more than {MAX_EXPANDED_VALUES:,} values, "
                "or an alias is inside its own anchor; write the values out or use fewer aliases", node.start_mark)
        return super().construct_document(node)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, yaml.Mark] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: the base class reports it
                break
            if first is not None:
                raise DuplicateKeyError(key, first, key_node.start_mark)
            seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_timestamp(self, node: yaml.ScalarNode) -> Any:
        # An unquoted value shaped like a date (2026-13-01, 2026-02-30) is a timestamp to YAML, and PyYAML's
        # constructor raises a bare ValueError for an impossible one: a traceback instead of the file's line.
        try:
            return super().construct_yaml_timestamp(node)
        except ValueError as error:
            raise yaml.constructor.ConstructorError(
                None, None, f"{node.value!r} is not a valid date or timestamp ({error})", node.start_mark) from None


    def construct_yaml_int(self, node: yaml.ScalarNode) -> Any:
        # YAML 1.1 (PyYAML) reads 010 as octal 8 and 1:30 as base 60 (90); YAML 1.2 (yq, ruamel) reads 10 and the
        # string "1:30" (YAML 1.2.2 spec, 10.3.2 "Tag Resolution"): the file means what its reader decides, so refuse.
        digits = str(node.value).replace("_", "").lstrip("+-")
        if ":" in digits:
            raise yaml.constructor.ConstructorError(
                None, None, f"{node.value!r} is a base 60 number to YAML 1.1 and a string to YAML 1.2; quote it for "
                "a string (a time of day: \"03:00\") or write the number in decimal", node.start_mark)
        if len(digits) > 1 and digits.startswith("0") and digits[1] not in "xb":
            yaml_11, yaml_12 = super().construct_yaml_int(node), int(str(node.value).replace("_", ""), 10)
            raise yaml.constructor.ConstructorError(
                None, None, f"{node.value!r} is an octal number to YAML 1.1 ({yaml_11}) and {yaml_12} to YAML 1.2; "
                "write it without the leading zero, or quote it for a string", node.start_mark)
        return super().construct_yaml_int(node)


SafeLoader.add_constructor("tag:yaml.org,2002:int", SafeLoader.construct_yaml_int)
SafeLoader.add_constructor("tag:yaml.org,2002:timestamp", SafeLoader.construct_yaml_timestamp)


#: The deepest nesting of collections a document may have. The files here nest a dozen deep; libyaml's composer recurses
#: on the C stack once per level (a document 100,000 deep ends the process with SIGSEGV, no exception), and every
#: consumer that walks the values (the schema, the messages) recurses on Python's, limited to 1000 frames.
MAX_NESTING = 100


class NestingError(yaml.MarkedYAMLError):
    """Collections nested deeper than :data:`MAX_NESTING`."""


def _check_nesting(text: str) -> None:
    """Refuse ``text`` nested deeper than :data:`MAX_NESTING`, before it is composed. The parser's events come from
    libyaml's state machine, whose stack is on the heap: counting them holds no frame per level (and costs a tenth of
    the load). A syntax error found here is raised as the load would raise it."""
    depth = 0
    for event in yaml.parse(text, Loader=_BaseLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_NESTING:
                raise NestingError(None, None, f"collections nested more than {MAX_NESTING} deep; no file here needs "
                                   "that many levels, flatten it", event.start_mark)
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def safe_load(text: str) -> Any:
    """``yaml.safe_load`` with :class:`SafeLoader` (duplicate keys refused, nesting bounded)."""
    _check_nesting(text)
    return yaml.load(text, Loader=SafeLoader)


def load_yaml_mapping(path: Path) -> dict[str, Any]:
    """Parse ``path`` as YAML whose top level is a mapping (ConfigError otherwise)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(str(path), "(file)", f"cannot be read: {error.strerror}") from None
    except UnicodeDecodeError as error:
        line = path.read_bytes()[:error.start].count(b"\n") + 1
        raise ConfigError(str(path), f"line {line}",
                          f"not UTF-8 text (byte 0x{error.object[error.start]:02x}); save the file as UTF-8") from None
    try:
        data = safe_load(text)
    except DuplicateKeyError as error:
        raise ConfigError(str(path), f"line {error.line}, key {error.key!r}",
                          f"duplicate key (first on line {error.first_line}); a YAML mapping names each key "
                          "once, and the file is refused rather than keeping only the last value") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(file)"
        problem = getattr(error, "problem", None) or str(error)
        kind = ("invalid YAML value" if isinstance(error, yaml.constructor.ConstructorError) else
                "too deeply nested" if isinstance(error, NestingError) else "YAML syntax error")
        raise ConfigError(str(path), where, f"{kind}: {problem}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(str(path), "(top level)", "must be a mapping of keys to values")
    return data
