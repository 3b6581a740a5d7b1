"""Errors that map to the documented exit codes (0 ok, 1 policy/gate failure, 2 bad input)."""

from __future__ import annotations

from pathlib import Path

from shared import REPO_ROOT


def display_path(path: str) -> str:
    """``path`` relative to the working directory when it is inside it (shorter messages), else relative to the
    repo's root when inside the repo: a layer program runs from its stacks/<layer> folder, and a file it reads
    (an env file, the catalog) is named as from the root, as the commands run there name it."""
    resolved = Path(path).resolve()
    for base in (Path.cwd(), REPO_ROOT):
        try:
            return str(resolved.relative_to(base))
        except ValueError:
            continue
    return path


class PlatformError(Exception):
    """Base class of every error this repo raises on purpose."""

    exit_code = 1


class ConfigError(PlatformError):
    """Bad input: an env file, a catalog, a command-line argument.

    The message always names the file, the key path and the reason, so that a user can fix the
    input without reading code.
    """

    exit_code = 2

    def __init__(self, file: str, key: str, reason: str) -> None:
        file = display_path(file)
        self.file = file
        self.key = key
        self.reason = reason
        super().__init__(f"{file}: {key}: {reason}")


class RelatedConfigError(ConfigError):
    """A problem (or the problems) of an input a command reads for another's sake (another env's file, read for the
    env it runs on), said with why it was read first: ``dev replicates its images to ...: environments/qa.yaml: ...``.
    ``file``/``key``/``reason`` are those of ``error`` (its first problem)."""

    def __init__(self, why: str, error: ConfigError) -> None:
        super().__init__(error.file, error.key, error.reason)
        self.args = (f"{why}: {error}",)


class ConfigErrors(ConfigError):
    """Several problems with one input, reported together so that one run shows everything to fix.

    ``file``/``key``/``reason`` are those of the first problem; ``problems`` holds all of them.
    """

    def __init__(self, problems: list[ConfigError]) -> None:
        first = problems[0]
        super().__init__(first.file, first.key, first.reason)
        self.problems = list(problems)
        files = sorted({problem.file for problem in problems})
        lines = [f"{len(problems)} problems in {', '.join(files)}:"]
        lines += [f"  {problem}" for problem in problems]
        self.args = ("\n".join(lines),)

    def __str__(self) -> str:
        return str(self.args[0])


def raise_all(problems: list[ConfigError]) -> None:
    """Raise nothing, the one problem, or all of them as :class:`ConfigErrors`."""
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise ConfigErrors(problems)


def non_string_key(loc: tuple[object, ...], value: object, kind: str = "") -> tuple[str, str] | None:
    """The key path and reason of a pydantic error about a mapping key that is not a string (None: another error).
    YAML 1.1 reads an unquoted ``on``/``no``/``yes``/``off``/``true`` key as a boolean, which pydantic's location
    names by its index (``services.0.[key]`` in a dict field; ``tags.1``, error type ``invalid_key``, among the extra
    keys of a model that allows them): the path names the key as YAML read it instead."""
    if not loc or isinstance(value, str):
        return None
    if loc[-1] == "[key]":
        parent = loc[:-2]
    elif kind == "invalid_key":
        parent = loc[:-1]
    else:
        return None
    path = ".".join([*(str(part) for part in parent), str(value)])
    return path, (f"a key YAML read as the {type(value).__name__} {value!r} (an unquoted on/off/yes/no/true/false, "
                  "null or number); quote it ('on':), as keys here are names")


class UsageError(PlatformError):
    """A wrong command-line argument."""

    exit_code = 2


class ContractError(PlatformError):
    """A layer read or exported something its typed contract does not declare."""

    exit_code = 2

    @classmethod
    def hand_edited(cls, layer: str, output: str, value: object, form: str) -> ContractError:
        """A record ``layer``'s deployed stack exports in another form than the layer writes: its state was changed
        by hand, and a check that read it as "no change" could let through what it exists to stop."""
        return cls(f"{layer}'s output {output} is {value!r}, not {form}: its state was changed by hand; nothing was "
                   "changed")
