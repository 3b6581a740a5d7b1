"""Every YAML the platform reads refuses duplicate keys, and every file it writes keeps its mode.

A duplicated key is not a style problem: PyYAML keeps the last value silently, so a second
``region:`` in an env file would synthesize (and deploy) the env in the wrong region.
"""

from __future__ import annotations

import io
import os
import stat
import subprocess
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
import yaml

from shared import REPO_ROOT
from shared.catalog import load_catalog_file
from shared.cli import write_atomically
from shared.errors import ConfigError
from shared.promote import main as promote_main
from shared.yamlio import MAX_NESTING, NestingError, _expanded_size, load_yaml_mapping, safe_load
from tests.spec_envs import SPEC_CATALOG, SPEC_ENV_DIR


@pytest.mark.parametrize(("text", "named"), [
    # a duplicate key: the second one's line, the key and the first one's line
    ("region: eu-west-1\ntags:\n  team: a\nregion: us-east-1\n", ("line 4", "'region'", "line 1")),
    # YAML reads an unquoted 2026-13-01 as a timestamp; PyYAML's constructor raised a bare ValueError for it
    ("messaging:\n  credentials_rotation: {epoch: 2026-13-01, max_age_days: 180}\n", ("line 2", "'2026-13-01'")),
    # YAML 1.1 (PyYAML) reads a leading-zero integer as octal (010 is 8) and 1:30 as base 60 (90); YAML 1.2 tools
    # (yq, ruamel's default) read 10 and the string "1:30": the file's value depends on the tool reading it
    ("services:\n  gateway: {desired_count: 010}\n", ("line 2", "'010'", "octal")),
    ("messaging:\n  message_ttl_ms: -0700\n", ("line 2", "'-0700'", "octal")),
    ("messaging:\n  maintenance_window: {time_of_day: 3:00}\n", ("line 2", "'3:00'", "base 60", "quote")),
], ids=["duplicate-key", "impossible-date", "octal", "negative-octal", "sexagesimal"])
def test_a_bad_value_names_the_file_and_the_line(tmp_path: Path, text: str, named: tuple[str, ...]) -> None:
    path = tmp_path / "dev.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_yaml_mapping(path)
    message = str(caught.value)
    assert str(path) in message and all(part in message for part in named), message


def test_a_valid_unquoted_date_is_still_a_date() -> None:
    assert safe_load("epoch: 2026-11-01\n") == {"epoch": date(2026, 11, 1)}


def test_a_duplicate_nested_key_is_refused_too() -> None:
    with pytest.raises(Exception, match="duplicate key 'cidr'"):
        safe_load("network:\n  cidr: 10.0.0.0/16\n  cidr: 10.1.0.0/16\n")


def test_plain_decimal_hex_and_zero_integers_are_still_integers() -> None:
    assert safe_load("a: 0\nb: 10\nc: 0x1F\nd: -3\ne: 1_000\nf: '010'\n") == {
        "a": 0, "b": 10, "c": 31, "d": -3, "e": 1000, "f": "010"}


def alias_bomb(levels: int) -> str:
    """Anchors of 10 aliases each of the one before ("billion laughs"): 10**levels strings from a few lines."""
    lines = ["zz:", '  x0: &x0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"  x{n}: &x{n} [{', '.join([f'*x{n - 1}'] * 10)}]" for n in range(1, levels)]
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_is_refused_before_anything_walks_it(tmp_path: Path) -> None:
    """Its expansion is what every consumer walks (the schema's error messages repr their input): 10**9 values hung
    the synth of an env file of 11 lines."""
    path = tmp_path / "dev.yaml"
    path.write_text(alias_bomb(7) + "region: eu-west-1\n")
    with pytest.raises(ConfigError) as caught:
        load_yaml_mapping(path)
    message = str(caught.value)
    assert str(path) in message and "aliases" in message and "line 1" in message, message


def test_anchors_and_merge_keys_of_a_normal_size_still_load() -> None:
    assert safe_load(alias_bomb(3) + "a: &a {x: 1}\nb: {<<: *a, y: 2}\n")["b"] == {"x": 1, "y": 2}
    # the size walk holds no frame per level (a document that deep is refused before it: see below)
    assert _expanded_size(yaml.compose("a: " + "[" * 5000 + "]" * 5000 + "\n", Loader=yaml.CSafeLoader)) == 5002
    with pytest.raises(Exception, match="inside its own anchor"):
        safe_load("a: &a [*a]\n")


def test_a_file_nested_too_deep_is_named_not_a_crash(tmp_path: Path) -> None:
    """libyaml's composer recurses on the C stack: a file of 100,000 `[` ended the process with SIGSEGV (no
    exception, no file named); run in a child so the old code's crash fails this test instead of ending pytest."""
    path = tmp_path / "dev.yaml"
    path.write_text("region: eu-west-1\ntags: " + "[" * 100_000 + "]" * 100_000 + "\n")
    child = subprocess.run(
        [sys.executable, "-c", "import sys\nfrom pathlib import Path\nfrom shared.errors import ConfigError\n"
         "from shared.yamlio import load_yaml_mapping\ntry:\n    load_yaml_mapping(Path(sys.argv[1]))\n"
         "except ConfigError as error:\n    sys.exit(f'error: {error}')\n", str(path)],
        capture_output=True, text=True, cwd=REPO_ROOT, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}, check=False)
    assert child.returncode == 1 and str(path) in child.stderr and "line 2" in child.stderr, child
    assert f"nested more than {MAX_NESTING} deep" in child.stderr, child.stderr


def test_the_nesting_limit_counts_block_and_flow_levels() -> None:
    def block(levels: int) -> str:  # a mapping in a mapping, `levels` collections in all
        return "".join(f"{'  ' * n}k{n}:\n" for n in range(levels - 1)) + f"{'  ' * (levels - 1)}k: v\n"

    assert safe_load(block(MAX_NESTING))
    assert safe_load("a: " + "[" * (MAX_NESTING - 1) + "]" * (MAX_NESTING - 1) + "\n")
    for text in (block(MAX_NESTING + 1), "a: " + "{b: " * MAX_NESTING + "}" * MAX_NESTING + "\n"):
        with pytest.raises(NestingError, match="nested more than"):
            safe_load(text)


def test_the_same_key_in_sibling_mappings_is_fine() -> None:
    assert safe_load("a: {x: 1}\nb: {x: 2}\n") == {"a": {"x": 1}, "b": {"x": 2}}


def test_a_duplicated_catalog_service_is_named(tmp_path: Path) -> None:
    text = SPEC_CATALOG.read_text()
    path = tmp_path / "catalog.yaml"
    # the first service entry, appended again at the end of the services mapping
    lines = text.splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.startswith("  ") and not line.startswith("   ")
                 and line.rstrip().endswith(":") and i > 0 and lines[i - 1].rstrip() in ("services:",))
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("  ") and not lines[i].startswith("   "))
    path.write_text(text.rstrip("\n") + "\n" + "".join(lines[start:end]))
    name = lines[start].strip().rstrip(":")
    with pytest.raises(ConfigError, match="duplicate key") as caught:
        load_catalog_file(path)
    assert f"'{name}'" in str(caught.value)


def _env_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "environments"
    folder.mkdir(parents=True)
    for source in SPEC_ENV_DIR.glob("*.yaml"):
        (folder / source.name).write_text(source.read_text())
    return folder


def _impossible_date(text: bytes) -> bytes:
    assert b"epoch: 2026-11-01" in text
    return text.replace(b"epoch: 2026-11-01", b"epoch: 2026-02-30")


@pytest.mark.parametrize(("mutate", "named"), [
    # a second top-level key: the duplicate, not the last value silently winning
    (lambda text: text + b"region: us-east-1\n", ("'region'",)),
    # e.g. saved as Latin-1 by an editor: a clear refusal, not a UnicodeDecodeError traceback; line 5 holds the byte
    (lambda text: text.replace(b"team: ml-platform", b"team: ml-plattform-\xe9quipe"), ("UTF-8", "line 5")),
    (_impossible_date, ("'2026-02-30'",)),
], ids=["second-region", "not-utf8", "impossible-date"])
def test_synth_of_a_bad_env_file_exits_2_naming_it_and_writes_nothing(
        tmp_path: Path, mutate: Callable[[bytes], bytes], named: tuple[str, ...]) -> None:
    env_dir = _env_copy(tmp_path / "copy")
    dev = env_dir / "dev.yaml"
    dev.write_bytes(mutate(dev.read_bytes()))
    build = tmp_path / "build"
    result = subprocess.run([sys.executable, "-m", "shared.synth", "dev", "--build-dir", str(build)],
                            capture_output=True, text=True, cwd=REPO_ROOT, check=False,
                            env={**os.environ, "PLATFORM_ENV_DIR": str(env_dir), "PYTHONPATH": str(REPO_ROOT)})
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and "dev.yaml" in result.stderr, result.stderr
    assert all(part in result.stderr for part in named), result.stderr
    assert not (build / "dev").exists()


def test_promotion_into_a_file_with_a_duplicate_key_exits_2_and_writes_nothing(env_dir: Path) -> None:
    staging = env_dir / "staging.yaml"
    before = staging.read_text() + 'account_id: "222222222222"\n'
    staging.write_text(before)
    code = promote_main(["dev", "staging"], out=io.StringIO(), policy_check=lambda target, folder: [],
                        deployed_images=lambda source, services: [], registry_images=lambda target, images: [])
    assert code == 2
    assert staging.read_text() == before


def test_a_replaced_file_keeps_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "staging.yaml"
    path.write_text("old\n")
    path.chmod(0o644)
    write_atomically({path: "new\n"})
    assert path.read_text() == "new\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_a_folder_where_one_of_the_files_goes_writes_none_of_them(tmp_path: Path) -> None:
    """All or none: a folder in one file's place (a rename onto it fails) is refused before any file is replaced,
    with exit 2's error naming it; the files before it keep their old text."""
    from shared.errors import UsageError

    first, second = tmp_path / "broker.json", tmp_path / "compute.json"
    first.write_text("old\n")
    second.mkdir()
    with pytest.raises(UsageError, match=r"compute\.json: a folder stands where the output file goes"):
        write_atomically({first: "new\n", second: "new\n"})
    assert first.read_text() == "old\n" and second.is_dir()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["broker.json", "compute.json"]  # no temp left


def test_an_output_the_system_refuses_is_exit_2_naming_it_and_a_device_is_written_into(tmp_path: Path) -> None:
    """A full disk (/dev/full answers every write with ENOSPC) is the command's error naming its option, not a
    traceback after the run; a device or pipe (/dev/stdout) is written into, not replaced by a file."""
    from shared.cli import write_output
    from shared.errors import UsageError

    with pytest.raises(UsageError, match=r"^--json /dev/full: could not be written \(No space left on device\)$"):
        write_output(Path("/dev/full"), "[]\n", "--json")
    assert Path("/dev/full").is_char_device()
    write_output(Path("/dev/null"), "[]\n", "--sarif")
    assert Path("/dev/null").is_char_device()
    write_output(tmp_path / "out" / "findings.json", "[]\n", "--json")
    assert (tmp_path / "out" / "findings.json").read_text() == "[]\n"
    # a link (``/dev/stdout`` redirected to a file is one) is written through, not replaced by a file
    target, link = tmp_path / "target.json", tmp_path / "link.json"
    target.write_text("old\n")
    link.symlink_to(target)
    write_output(link, "new\n", "--json")
    assert link.is_symlink() and target.read_text() == "new\n"


def test_an_output_to_dev_stdout_redirected_to_a_file_lands_in_the_file(tmp_path: Path) -> None:
    """`policy --json /dev/stdout > findings.json`: the link /dev/stdout leads to the shell's file, which a rename
    over the link would leave empty (and, as root, replace the link)."""
    out = tmp_path / "findings.json"
    with out.open("w") as stream:
        subprocess.run([sys.executable, "-c", "from pathlib import Path; from shared.cli import write_output; "
                        "write_output(Path('/dev/stdout'), '[]\\n', '--json')"],
                       check=True, cwd=REPO_ROOT, stdout=stream, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    assert out.read_text() == "[]\n"
    assert Path("/dev/stdout").is_symlink()


def test_a_new_file_follows_the_umask(tmp_path: Path) -> None:
    path = tmp_path / "out" / "dev.json"
    previous = os.umask(0o027)
    try:
        # the writer read the umask when it was imported; a new process sees this one
        subprocess.run([sys.executable, "-c", "import sys; from pathlib import Path; from shared.cli import "
                        "write_atomically; write_atomically({Path(sys.argv[1]): 'x'})", str(path)],
                       check=True, cwd=REPO_ROOT, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
