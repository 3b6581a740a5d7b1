"""The service catalog: call cycles are refused when it is loaded (exit 2, naming the cycle), and the
creation order puts every service after the services it calls."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared import REPO_ROOT
from shared.catalog import CATALOG_ENV_VAR, load_catalog
from shared.errors import ConfigError
from tests.catalog_helpers import write_catalog
from tests.readme_helpers import readme_block
from tests.spec_envs import SPEC_CATALOG


def test_the_committed_catalog_is_created_callees_first() -> None:
    catalog = load_catalog()
    order = catalog.creation_order()
    assert sorted(order) == sorted(catalog.names())
    for spec in catalog:
        for callee in spec.calls:
            assert order.index(callee) < order.index(spec.name), (spec.name, callee)


def test_creation_order_keeps_catalog_order_where_calls_allow() -> None:
    # gateway calls preprocess and inference, preprocess calls inference; training calls nobody. (A service
    # added after them by the README's "Add a service" comes later and leaves their order alone.)
    shipped = ("gateway", "preprocess", "inference", "training")
    order = [name for name in load_catalog().creation_order() if name in shipped]
    assert order == ["inference", "preprocess", "gateway", "training"]


def test_a_call_cycle_is_refused_naming_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_catalog(tmp_path, monkeypatch, lambda services: services["inference"].update(calls=["gateway"]))
    with pytest.raises(ConfigError) as raised:
        load_catalog()
    error = raised.value
    assert Path(error.file) == path
    assert error.key.startswith("services.") and error.key.endswith(".calls")
    cycle = error.reason.split("call cycle ", 1)[1].split(";", 1)[0].split(" -> ")
    # A closed walk along `calls` edges through the services of the cycle.
    assert cycle[0] == cycle[-1] and set(cycle) == {"gateway", "inference"} | ({"preprocess"} & set(cycle))
    services = load_catalog_raw(path)
    for caller, callee in itertools.pairwise(cycle):
        assert callee in services[caller].get("calls", []), (caller, callee)


def load_catalog_raw(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())["services"]


def test_a_two_service_cycle_names_both_in_call_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def change(services: dict[str, Any]) -> None:
        services["training"]["calls"] = ["preprocess"]
        services["preprocess"]["calls"] = ["training"]

    write_catalog(tmp_path, monkeypatch, change)
    with pytest.raises(ConfigError) as raised:
        load_catalog()
    assert raised.value.reason.split(";")[0] in ("call cycle training -> preprocess -> training",
                                                 "call cycle preprocess -> training -> preprocess")
    assert raised.value.key in ("services.training.calls", "services.preprocess.calls")


def test_an_unknown_callee_names_the_callers_calls_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_catalog(tmp_path, monkeypatch, lambda services: services["training"].update(calls=["billing"]))
    with pytest.raises(ConfigError) as raised:
        load_catalog()
    assert (raised.value.key, raised.value.reason) == ("services.training.calls", "unknown service 'billing'")


def test_a_cyclic_catalog_stops_synth_with_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_catalog(tmp_path, monkeypatch, lambda services: services["inference"].update(calls=["preprocess"]))
    result = subprocess.run([sys.executable, "-m", "shared.synth", "dev"], cwd=REPO_ROOT, capture_output=True,
                            text=True, timeout=300,
                            env={**os.environ, CATALOG_ENV_VAR: str(path), "PYTHONPATH": str(REPO_ROOT)})
    assert result.returncode == 2, result.stderr
    assert "services.inference.calls" in result.stderr or "services.preprocess.calls" in result.stderr
    assert "call cycle" in result.stderr


def test_a_misspelt_key_is_named_as_unknown_with_every_other_problem(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # `healthpath` for `health_path`: the user must see the key they wrote, not only the one now missing
    def change(services: dict[str, Any]) -> None:
        services["training"]["healthpath"] = services["training"].pop("health_path")
        services["inference"]["port"] = "eighty"

    path = write_catalog(tmp_path, monkeypatch, change)
    with pytest.raises(ConfigError) as raised:
        load_catalog()
    problems = [(p.key, p.reason) for p in getattr(raised.value, "problems", [raised.value])]
    assert ("services.training.healthpath", "unknown key") in problems
    assert ("services.training.health_path", "required key is missing") in problems
    assert any(key == "services.inference.port" for key, _ in problems)
    assert all(Path(p.file) == path for p in getattr(raised.value, "problems", [raised.value]))


@pytest.mark.parametrize("key", ["gpu", "gpus", "gpu_count", "accelerator", "cuda", "nvidia_gpus"])
def test_a_gpu_request_is_refused_saying_fargate_has_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          key: str) -> None:
    # An ML team's first guess for a GPU: "unknown key" alone would send them looking for the right spelling. Every
    # service runs on Fargate, which has no GPU (ECS reserves GPUs on the EC2 container instance a task runs on).
    write_catalog(tmp_path, monkeypatch, lambda services: services["training"].update({key: 1}))
    with pytest.raises(ConfigError) as raised:
        load_catalog()
    problems = {p.key: p.reason for p in getattr(raised.value, "problems", [raised.value])}
    reason = problems[f"services.training.{key}"]
    assert reason.startswith("unknown key") and "Fargate has no GPU" in reason
    assert "16384" in reason  # the largest task it can have instead


def test_an_unknown_key_that_asks_for_no_gpu_stays_just_unknown(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    write_catalog(tmp_path, monkeypatch, lambda services: services["training"].update(replicas=2))
    with pytest.raises(ConfigError) as raised:
        load_catalog()
    assert (raised.value.key, raised.value.reason) == ("services.training.replicas", "unknown key")


def test_an_unquoted_no_as_a_service_name_is_named_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # YAML 1.1 reads `no:` as the key False, which pydantic's location named by an index ("services.0.[key]")
    from shared.catalog import CATALOG_ENV_VAR

    path = tmp_path / "catalog.yaml"
    path.write_text(SPEC_CATALOG.read_text().replace("\n  training:\n", "\n  no:\n", 1))
    monkeypatch.setenv(CATALOG_ENV_VAR, str(path))
    with pytest.raises(ConfigError) as raised:
        load_catalog()
    problems = [(p.key, p.reason) for p in getattr(raised.value, "problems", [raised.value])]
    assert [key for key, _ in problems] == ["services.False"], problems
    assert "a key YAML read as the bool False" in problems[0][1] and "quote it" in problems[0][1]


def test_a_shared_port_names_both_services_and_the_port(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def change(services: dict[str, Any]) -> None:
        services["training"]["port"] = services["inference"]["port"]

    write_catalog(tmp_path, monkeypatch, change)
    with pytest.raises(ConfigError) as raised:
        load_catalog()
    port = load_catalog_raw(tmp_path / "catalog.yaml")["inference"]["port"]
    assert raised.value.key == "services.training.port"
    assert "inference" in raised.value.reason and str(port) in raised.value.reason


def test_a_catalog_problem_is_listed_once_for_a_command_over_every_env(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_catalog(tmp_path, monkeypatch, lambda services: services["training"].pop("port"))
    result = subprocess.run([sys.executable, "-m", "shared.synth", "dev", "staging", "prod",
                             "--build-dir", str(tmp_path / "build")], cwd=REPO_ROOT, capture_output=True,
                            text=True, timeout=300,
                            env={**os.environ, CATALOG_ENV_VAR: str(path), "PYTHONPATH": str(REPO_ROOT)})
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("services.training.port") == 1, result.stderr
    assert not (tmp_path / "build").exists()


def test_a_caller_waiting_less_than_a_service_it_calls_is_refused_naming_both(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # preprocess would give up on inference (and its own callers on it) before inference may answer.
    path = write_catalog(tmp_path, monkeypatch, lambda services: services["preprocess"].update(
        request_timeout_seconds=services["inference"]["request_timeout_seconds"] - 1))
    with pytest.raises(ConfigError) as raised:
        load_catalog()
    inference = load_catalog_raw(path)["inference"]["request_timeout_seconds"]
    assert Path(raised.value.file) == path
    assert raised.value.key == "services.preprocess.request_timeout_seconds"
    assert "inference" in raised.value.reason and f"at least {inference}" in raised.value.reason


def test_an_omitted_request_timeout_is_the_mesh_proxies_15_s_default(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    def change(services: dict[str, Any]) -> None:
        for spec in services.values():
            spec.pop("request_timeout_seconds", None)

    write_catalog(tmp_path, monkeypatch, change)
    assert {spec.request_timeout_seconds for spec in load_catalog()} == {15}


@pytest.mark.parametrize(("value", "words"), [
    (0, "wait forever"), (-5, "outside ECS's Service Connect timeout range"),
    (2147483648, "outside ECS's Service Connect timeout range"), ("soon", "valid integer")])
def test_a_request_timeout_ecs_cannot_take_is_refused_naming_the_key(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: object, words: str) -> None:
    # training calls nobody and nobody calls it: only the value itself can be wrong.
    write_catalog(tmp_path, monkeypatch, lambda services: services["training"].update(request_timeout_seconds=value))
    with pytest.raises(ConfigError) as raised:
        load_catalog()
    assert raised.value.key == "services.training.request_timeout_seconds"
    assert words in raised.value.reason and not raised.value.reason.startswith("Value error")


def test_a_public_service_waiting_longer_than_its_load_balancer_can_is_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_catalog(tmp_path, monkeypatch, lambda services: services["gateway"].update(request_timeout_seconds=3601))
    with pytest.raises(ConfigError) as raised:
        load_catalog()
    assert raised.value.key == "services.gateway.request_timeout_seconds"
    assert "3600" in raised.value.reason and "ALB" in raised.value.reason


@pytest.mark.parametrize(("service", "reached"), [
    ("gateway", "is public"), ("inference", "is called by gateway, preprocess"),
    ("preprocess", "is called by gateway")])
def test_job_protection_is_declared_only_by_a_consumer_no_http_request_reaches(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, service: str, reached: str) -> None:
    """Only such a consumer is scaled on its queue alone, where the protection lets its idle tasks leave; a key that
    changes nothing would read as if it did."""
    write_catalog(tmp_path, monkeypatch, lambda services: services[service].update(protects_jobs=True))
    with pytest.raises(ConfigError) as raised:
        load_catalog()
    assert raised.value.key == f"services.{service}.protects_jobs"
    assert reached in raised.value.reason and "remove the key" in raised.value.reason


def test_job_protection_for_jobs_longer_than_one_protection_lasts_is_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ECS protects a task for at most 2880 minutes at once, and the app protects each job for its whole length."""
    write_catalog(tmp_path, monkeypatch,
                  lambda services: services["training"].update(protects_jobs=True, max_job_seconds=172_800))
    assert load_catalog()["training"].protects_jobs
    write_catalog(tmp_path, monkeypatch,
                  lambda services: services["training"].update(protects_jobs=True, max_job_seconds=172_801))
    with pytest.raises(ConfigError) as raised:
        load_catalog()
    assert raised.value.key == "services.training.protects_jobs"
    assert "48 hours" in raised.value.reason


def test_job_protection_without_a_queue_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def drop_queue(services: dict[str, Any]) -> None:
        del services["training"]["consumes"], services["training"]["max_job_seconds"]
        services["training"]["protects_jobs"] = True

    write_catalog(tmp_path, monkeypatch, drop_queue)
    with pytest.raises(ConfigError) as raised:
        load_catalog()
    assert raised.value.key == "services.training.protects_jobs"
    assert "consumes nothing" in raised.value.reason


@pytest.mark.parametrize(("service", "change", "said"), [
    ("gateway", {"request_timeout_seconds": 30}, "services.gateway.request_timeout_seconds"),
    ("training", {"artifacts": "rw"}, "services.training.artifacts: 'rw' is no artifact access"),
    ("inference", {"startup_seconds": 3001}, "services.inference.startup_seconds: 3001 s is longer than an ECS")])
def test_a_bad_catalog_value_stops_synth_with_exit_2_and_writes_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, service: str, change: dict[str, Any], said: str) -> None:
    path = write_catalog(tmp_path, monkeypatch, lambda services: services[service].update(change))
    result = subprocess.run([sys.executable, "-m", "shared.synth", "dev", "--build-dir", str(tmp_path / "build")],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
                            env={**os.environ, CATALOG_ENV_VAR: str(path), "PYTHONPATH": str(REPO_ROOT)})
    assert result.returncode == 2, result.stderr
    assert said in result.stderr and str(path) in result.stderr
    assert not (tmp_path / "build").exists()


@pytest.mark.parametrize("value", [1, 121, 300])
def test_a_stop_timeout_fargate_cannot_take_is_refused_naming_the_key(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: int) -> None:
    path = write_catalog(tmp_path, monkeypatch,
                         lambda services: services["training"].update(stop_timeout_seconds=value))
    with pytest.raises(ConfigError) as raised:
        load_catalog()
    assert (Path(raised.value.file), raised.value.key) == (path, "services.training.stop_timeout_seconds")
    assert "2 to 120 s" in raised.value.reason and "scale-in protection" in raised.value.reason


def test_a_stop_timeout_shorter_than_a_request_in_flight_is_a_warning(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    write_catalog(tmp_path, monkeypatch, lambda services: services["inference"].update(stop_timeout_seconds=40))
    catalog = load_catalog()
    assert catalog["inference"].stop_timeout == 40
    (warning,) = [w for w in catalog.warnings() if "stop_timeout_seconds" in w]
    assert warning.startswith("services.inference.stop_timeout_seconds: 40 s") and "120 s" in warning


def test_the_broker_consumer_timeout_covers_the_longest_job_of_the_catalog(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_catalog()["training"].max_job_seconds == 21600  # training runs for hours
    assert load_catalog().consumer_timeout_ms() == 21_600_000

    def two_long_jobs(services: dict[str, Any]) -> None:
        services["training"]["max_job_seconds"] = 7200
        services["preprocess"]["max_job_seconds"] = 9000

    write_catalog(tmp_path, monkeypatch, two_long_jobs)
    assert load_catalog().consumer_timeout_ms() == 9_000_000


def test_a_catalog_without_long_jobs_keeps_amazon_mqs_30_minutes(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    def short_jobs(services: dict[str, Any]) -> None:
        services["training"].pop("max_job_seconds", None)
        services["preprocess"]["max_job_seconds"] = 600  # shorter than the default: the default stays

    write_catalog(tmp_path, monkeypatch, short_jobs)
    assert load_catalog().consumer_timeout_ms() == 1_800_000


@pytest.mark.parametrize(("value", "words"), [
    (0, "no job length"), (-1, "no job length"), (2147484, "2147483 s"), ("hours", "valid integer")])
def test_a_job_length_the_broker_cannot_cover_is_refused_naming_the_key(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: object, words: str) -> None:
    path = write_catalog(tmp_path, monkeypatch, lambda services: services["training"].update(max_job_seconds=value))
    with pytest.raises(ConfigError) as raised:
        load_catalog()
    assert (Path(raised.value.file), raised.value.key) == (path, "services.training.max_job_seconds")
    assert words in raised.value.reason and not raised.value.reason.startswith("Value error")


def test_a_job_length_on_a_service_that_consumes_nothing_is_refused(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    def on_a_publisher(services: dict[str, Any]) -> None:
        services["gateway"]["consumes"] = {}
        services["gateway"]["max_job_seconds"] = 3600

    path = write_catalog(tmp_path, monkeypatch, on_a_publisher)
    with pytest.raises(ConfigError) as raised:
        load_catalog()
    assert (Path(raised.value.file), raised.value.key) == (path, "services.gateway.max_job_seconds")
    assert "consumes nothing" in raised.value.reason


def test_the_shipped_catalog_has_training_write_and_inference_read_model_artifacts() -> None:
    catalog = load_catalog()
    shipped = {"gateway": None, "preprocess": None, "inference": "read", "training": "write"}
    assert {name: catalog[name].artifacts for name in shipped} == shipped  # a service a user adds may differ
    assert catalog.uses_artifacts


@pytest.mark.parametrize("value", ["readwrite", "Write", True, "", ["read"]])
def test_an_artifact_access_other_than_read_or_write_is_refused_naming_the_key(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: object) -> None:
    path = write_catalog(tmp_path, monkeypatch, lambda services: services["inference"].update(artifacts=value))
    with pytest.raises(ConfigError) as raised:
        load_catalog()
    assert (Path(raised.value.file), raised.value.key) == (path, "services.inference.artifacts")
    assert "'read'" in raised.value.reason and "'write'" in raised.value.reason
    assert "leave the key out for none" in raised.value.reason and not raised.value.reason.startswith("Value error")


def test_artifact_readers_without_a_writer_are_a_warning_and_no_key_means_no_store(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_catalog(tmp_path, monkeypatch, lambda services: services["training"].pop("artifacts"))
    catalog = load_catalog()
    (warning,) = [w for w in catalog.warnings() if "artifacts" in w]
    assert warning == "services.inference.artifacts: reads model artifacts, but no service of the catalog writes any"
    assert catalog.uses_artifacts

    def none_at_all(services: dict[str, Any]) -> None:
        for spec in services.values():
            spec.pop("artifacts", None)

    write_catalog(tmp_path, monkeypatch, none_at_all)
    catalog = load_catalog()
    assert not catalog.uses_artifacts and not [w for w in catalog.warnings() if "artifacts" in w]


def test_readme_lists_every_key_a_catalog_entry_may_set() -> None:
    """README's "Add a service" table names each key of ServiceSpec (its first column, in backticks; the name is
    the entry's own key), and no key the model does not have: a key added to the catalog must be documented."""
    from shared.catalog import ServiceSpec

    table = readme_block("<!-- catalog-keys: start", "<!-- catalog-keys: end -->", "catalog-keys table")
    listed: set[str] = set()
    for line in table.splitlines():
        if line.startswith("| `"):
            first_cell = line.split("|")[1]
            listed.update(part.strip().strip("`") for part in first_cell.split(","))
    keys = set(ServiceSpec.model_fields) - {"name"}
    assert keys - listed == set(), f"README's catalog-keys table lacks {sorted(keys - listed)}"
    assert listed - keys == set(), f"README's catalog-keys table names keys ServiceSpec lacks: {sorted(listed - keys)}"


@pytest.mark.parametrize("key", ["training.request\n", "training.request\n\n", "Training.request"])
def test_a_routing_key_is_only_lower_case_words_digits_dots_underscores_and_dashes(key: str) -> None:
    """A trailing newline passed ``re.match`` with ``$`` (it matches before a final newline): the key would reach a
    binding and a topic permission regex."""
    from pydantic import ValidationError

    from shared.catalog import Routes

    with pytest.raises(ValidationError, match="is not a routing key"):
        Routes(requests=(key,))


def test_a_service_name_with_a_trailing_newline_is_refused() -> None:
    """'gateway\\n' passed ``_NAME.match`` (``$`` matches before a final newline) and would reach the RabbitMQ user, its
    permissions and the queue names."""
    from pydantic import ValidationError

    from shared.catalog import Catalog

    with pytest.raises(ValidationError, match="names are lower-case dns labels"):
        Catalog.model_validate({"services": {"gateway\n": {"port": 9000, "health_path": "/health",
                                                             "publishes": {"requests": ["a.request"]}}}})


@pytest.mark.parametrize(("key", "value"), [
    ("port", "8084"), ("cpu", "512"), ("public", "yes"), ("startup_seconds", 60.5), ("request_timeout_seconds", "30")])
def test_a_quoted_or_inexact_catalog_value_is_refused_as_the_env_file_refuses_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, key: str, value: object) -> None:
    # The env loader never coerces "8084" to 8084 or "yes" to True; the catalog is held to the same types, so a
    # value that reads one way in review and another in the stack cannot slip in.
    path = write_catalog(tmp_path, monkeypatch, lambda services: services["training"].update({key: value}))
    with pytest.raises(ConfigError) as raised:
        load_catalog()
    assert (Path(raised.value.file), raised.value.key) == (path, f"services.training.{key}")


def test_catalog_lists_stay_lists_under_strict_types() -> None:
    # YAML gives lists; the catalog keeps them as tuples (frozen), which strict types alone would refuse.
    # Compared with the file's own lists, so a service a user adds (README, "Add a service") changes nothing here.
    gateway = load_catalog().services["gateway"]
    raw = yaml.safe_load(SPEC_CATALOG.read_text())["services"]["gateway"]
    assert gateway.calls == tuple(raw["calls"]) and {"preprocess", "inference"} <= set(gateway.calls)
    assert gateway.publishes.requests == tuple(raw["publishes"]["requests"])


#: ECS developer guide, "Amazon ECS Service Connect components": add 256 CPU units and at least 64 MiB of memory to the
#: task for the Service Connect proxy (App Mesh's Envoy runs in the task the same way)
PROXY_CPU, PROXY_MEMORY = 256, 64


def test_every_shipped_service_leaves_its_app_room_beside_its_proxy() -> None:
    """The shipped catalog sizes each task as its app plus the proxy ECS adds to it (README, "Inside the task"): no
    shipped service gives its app less than Fargate's smallest task (256 units) once the proxy has its share."""
    catalog = yaml.safe_load(SPEC_CATALOG.read_text())
    starved = {name: (spec.get("cpu", 256), spec.get("memory", 512)) for name, spec in catalog["services"].items()
               if spec.get("cpu", 256) - PROXY_CPU < 256 or spec.get("memory", 512) - PROXY_MEMORY < 256}
    assert starved == {}


def test_every_whole_catalog_problem_is_told_in_one_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bad name, an unknown callee, a port taken twice and a wait shorter than a callee's come out together: a fix
    of one must not uncover the next only on the following run (a newcomer's walk through the README met them one
    at a time)."""
    def change(services: dict[str, Any]) -> None:
        services["Billing"] = dict(services["training"], port=services["inference"]["port"])
        services["training"]["calls"] = ["reporting"]
        services["gateway"]["request_timeout_seconds"] = 1
        services["gateway"]["calls"] = [*services["gateway"].get("calls", []), "inference"]

    path = write_catalog(tmp_path, monkeypatch, change)
    with pytest.raises(ConfigError) as raised:
        load_catalog()
    problems = getattr(raised.value, "problems", [raised.value])
    keys = {p.key for p in problems}
    assert {"services.Billing", "services.training.calls", "services.gateway.request_timeout_seconds"} <= keys, keys
    assert all(Path(p.file) == path for p in problems)
    reasons = {p.key: p.reason for p in problems}
    assert reasons["services.training.calls"] == "unknown service 'reporting'"
    # the second of the two in file order is told it took the first's port
    (port_key,) = keys & {"services.Billing.port", "services.inference.port"}
    assert reasons[port_key].startswith(f"{load_catalog_raw(path)['inference']['port']} is already the port of")


def test_a_call_cycle_is_still_found_beside_an_unknown_callee(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    def change(services: dict[str, Any]) -> None:
        services["training"]["calls"] = ["preprocess", "reporting"]
        services["preprocess"]["calls"] = [*services["preprocess"].get("calls", []), "training"]

    write_catalog(tmp_path, monkeypatch, change)
    with pytest.raises(ConfigError) as raised:
        load_catalog()
    reasons = [p.reason for p in getattr(raised.value, "problems", [raised.value])]
    assert "unknown service 'reporting'" in reasons
    assert any(reason.startswith("call cycle ") for reason in reasons), reasons
