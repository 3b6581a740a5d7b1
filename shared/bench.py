"""``nox -s bench``: the performance figures of the offline synth + policy path, from one run.

Every figure is the wall time of fresh processes, measured the same way within one run so the
ratios between them are meaningful on any machine:

* ``import_floor_s`` -- a process that only imports pulumi, the pulumi_aws modules the layers use,
  pulumi_rabbitmq and pulumi_policy: no run can be faster than this;
* ``policy_all_envs_s`` -- ``nox -s policy`` over dev, staging and prod (synth of every layer x env,
  every pack), as CI runs it; ``synth_all_envs_s`` is the synth alone, for comparison;
* ``per_stack_process_s`` -- the same work done the way ``pulumi preview --policy-pack`` runs
  stacks: one process per layer x env, each with its own pack processes;
* ``services_50_s`` / ``services_200_s`` -- synth + policy of one env with a generated catalog of
  that many services;
* ``program_100_s`` -- ``nox -s policy -- --program DIR`` of a generated program of 99 resources
  (:func:`generated_program`), against ``program_import_floor_s``: the same kind of floor for what
  that program needs (pulumi, pulumi_policy and the program's resource modules);
* ``peak_rss_mb`` -- the highest resident set of any process of the all-envs run (main or pack).

Targets (README, Performance): policy_all_envs_s <= 2.5 x import_floor_s; per_stack_process_s /
policy_all_envs_s >= 4; services_200_s <= 10 x import_floor_s; services_200_s / services_50_s <= 4.5;
program_100_s <= 2 x program_import_floor_s.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import keyword
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from shared import REPO_ROOT
from shared.cli import check_output_path, run_main, write_output
from shared.cli import console as shared_console
from shared.errors import PlatformError, UsageError

ENVS = ("dev", "staging", "prod")
PACKAGES = {"aws": "pulumi_aws", "rabbitmq": "pulumi_rabbitmq", "random": "pulumi_random"}
TARGETS = {
    "policy_all_envs_s <= 2.5 x import_floor_s": lambda f: f["policy_all_envs_s"] <= 2.5 * f["import_floor_s"],
    "per_stack_process_s / policy_all_envs_s >= 4": lambda f: f["per_stack_process_s"] / f["policy_all_envs_s"] >= 4,
    "services_200_s <= 10 x import_floor_s": lambda f: f["services_200_s"] <= 10 * f["import_floor_s"],
    "services_200_s / services_50_s <= 4.5": lambda f: f["services_200_s"] / f["services_50_s"] <= 4.5,
    "program_100_s <= 2 x program_import_floor_s": lambda f: f["program_100_s"] <= 2 * f["program_import_floor_s"],
}


class BenchError(PlatformError):
    exit_code = 1


def _environ(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO_ROOT), **extra}


def timed(command: list[str], env: dict[str, str] | None = None, ok: tuple[int, ...] = (0,)) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB, the process and its waited-for children) of one command."""
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=REPO_ROOT, env=env or _environ(), stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
    if process.stderr:
        process.stderr.close()
    if process.returncode not in ok:
        raise BenchError(f"{' '.join(command)} exited {process.returncode}:\n{stderr[-2000:]}")
    return elapsed, usage.ru_maxrss / 1024


def median_of(repeat: int, command: list[str], env: dict[str, str] | None = None,
              ok: tuple[int, ...] = (0,)) -> tuple[float, float]:
    runs = [timed(command, env, ok) for _ in range(repeat)]
    return statistics.median(r[0] for r in runs), max(r[1] for r in runs)


def generated_catalog(count: int) -> dict[str, Any]:
    """A catalog of ``count`` services shaped like the real one: a chain of request queues,
    events fanned out, HTTP calls to the next two services (none past the last: calls form no cycle)."""
    services: dict[str, Any] = {}
    for index in range(count):
        name = f"svc{index:03d}"
        following = [f"svc{(index + step) % count:03d}" for step in (1, 2) if (index + step) % count != index]
        services[name] = {
            "description": f"generated service {index}",
            "port": 8000 + index,
            "health_path": "/healthz",
            "cpu": 256,
            "memory": 512,
            "calls": [f"svc{index + step:03d}" for step in (1, 2) if index + step < count],
            "publishes": {"requests": [f"{following[0]}.request"] if following else [],
                          "events": [f"{name}.done"]},
            "consumes": {"requests": [f"{name}.request"],
                         "events": [f"svc{(index - 1) % count:03d}.done"] if count > 1 else []},
        }
    return {"services": services}


#: The broker of the generated envs: on RabbitMQ 4.2 its default limits (6,000 connections a node, 4,000 queues)
#: hold the largest scenario (200 services x 2 tasks x 2 connections, 400 queues) in either deployment mode.
BENCH_BROKER_INSTANCE_TYPE = "mq.m7g.2xlarge"


def _scenario_dir(count: int, root: Path) -> tuple[Path, Path]:
    """A catalog of ``count`` services and a copy of the env folder in force (environments/, or PLATFORM_ENV_DIR)
    whose dev releases all of them."""
    from shared import envs

    catalog = root / f"catalog-{count}.yaml"
    catalog.write_text(yaml.safe_dump(generated_catalog(count), sort_keys=False))
    env_dir = root / f"environments-{count}"
    shutil.copytree(envs.env_dir(), env_dir)
    for path in env_dir.glob("*.yaml"):
        data = yaml.safe_load(path.read_text())
        digest = "sha256:" + "0" * 64
        data["release"] = {"images": {f"svc{i:03d}": digest for i in range(count)}}
        data["services"] = {}
        data.setdefault("mesh", {})["canaries"] = {}
        data.setdefault("discovery", {})["static_instances"] = []
        messaging = data.get("messaging") or {}
        if messaging.get("broker") == "amazon-mq":
            # A broker that holds the generated services at their peak (the loader refuses one that cannot:
            # shared.broker_capacity); the shipped dev's mq.m7g.medium holds 100 connections, 200 services open 800.
            messaging["instance_type"] = BENCH_BROKER_INSTANCE_TYPE
        path.write_text(yaml.safe_dump(data, sort_keys=False))
    return catalog, env_dir


PROGRAM_APPS = 8  # x 10 resources + 18 shared ones and the stack: 99 resources


def generated_program(root: Path, apps: int = PROGRAM_APPS) -> Path:
    """A Pulumi Python program of about 100 resources in the shape public programs take: a VPC with
    subnets and flow logs, then per app a security group, an ECR repository, roles, a log group, a KMS
    key, a Fargate task definition and service, and an alarm (pulumi_aws only, as most programs)."""
    program = root / "program-100"
    program.mkdir(parents=True, exist_ok=True)
    (program / "Pulumi.yaml").write_text("name: bench-program\nruntime: python\n")
    (program / "__main__.py").write_text(f'''"""Generated by shared.bench: {apps} apps on Fargate in one VPC."""

import json

import pulumi
import pulumi_aws as aws

ASSUME = json.dumps({{"Version": "2012-10-17", "Statement": [{{
    "Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {{"Service": "ecs-tasks.amazonaws.com"}}}}]}})

vpc = aws.ec2.Vpc("main", cidr_block="10.0.0.0/16", enable_dns_hostnames=True, tags={{"Name": "main"}})
subnets = [aws.ec2.Subnet(f"private-{{i}}", vpc_id=vpc.id, cidr_block=f"10.0.{{i}}.0/24",
                          availability_zone=f"us-east-1{{'abcdf'[i]}}") for i in range(5)]
table = aws.ec2.RouteTable("private", vpc_id=vpc.id)
for i, subnet in enumerate(subnets):
    aws.ec2.RouteTableAssociation(f"private-{{i}}", subnet_id=subnet.id, route_table_id=table.id)
flow_logs = aws.cloudwatch.LogGroup("flow-logs", retention_in_days=365)
flow_role = aws.iam.Role("flow-logs", assume_role_policy=json.dumps({{"Version": "2012-10-17", "Statement": [{{
    "Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {{"Service": "vpc-flow-logs.amazonaws.com"}}}}]}}))
aws.ec2.FlowLog("main", vpc_id=vpc.id, traffic_type="ALL", log_destination=flow_logs.arn,
                iam_role_arn=flow_role.arn)
cluster = aws.ecs.Cluster("apps", settings=[aws.ecs.ClusterSettingArgs(name="containerInsights", value="enabled")])
execution = aws.iam.Role("execution", assume_role_policy=ASSUME)
aws.iam.RolePolicyAttachment("execution", role=execution.name,
                             policy_arn="arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy")

for index in range({apps}):
    name = f"app{{index}}"
    key = aws.kms.Key(name, enable_key_rotation=True, deletion_window_in_days=30)
    group = aws.ec2.SecurityGroup(name, vpc_id=vpc.id, description=f"{{name}} tasks",
                                  ingress=[aws.ec2.SecurityGroupIngressArgs(
                                      protocol="tcp", from_port=8080, to_port=8080, cidr_blocks=["10.0.0.0/16"])],
                                  egress=[aws.ec2.SecurityGroupEgressArgs(
                                      protocol="tcp", from_port=443, to_port=443, cidr_blocks=["10.0.0.0/16"])])
    repository = aws.ecr.Repository(name, image_tag_mutability="IMMUTABLE",
                                    image_scanning_configuration={{"scan_on_push": True}},
                                    encryption_configurations=[{{"encryption_type": "KMS", "kms_key": key.arn}}])
    aws.ecr.LifecyclePolicy(name, repository=repository.name, policy=json.dumps({{"rules": [{{
        "rulePriority": 1, "selection": {{"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 50}},
        "action": {{"type": "expire"}}}}]}}))
    logs = aws.cloudwatch.LogGroup(name, retention_in_days=90, kms_key_id=key.arn)
    task_role = aws.iam.Role(f"{{name}}-task", assume_role_policy=ASSUME)
    aws.iam.RolePolicy(f"{{name}}-task", role=task_role.id, policy=repository.arn.apply(lambda arn: json.dumps({{
        "Version": "2012-10-17", "Statement": [{{"Effect": "Allow", "Action": ["ecr:DescribeImages"],
                                                 "Resource": arn}}]}})))
    containers = pulumi.Output.all(repository.repository_url, logs.name).apply(lambda args, name=name: json.dumps([{{
        "name": name, "image": f"{{args[0]}}@sha256:{{'0' * 64}}", "essential": True, "user": "1000",
        "readonlyRootFilesystem": True, "portMappings": [{{"containerPort": 8080}}],
        "logConfiguration": {{"logDriver": "awslogs", "options": {{
            "awslogs-group": args[1], "awslogs-region": "us-east-1", "awslogs-stream-prefix": name}}}}}}]))
    task = aws.ecs.TaskDefinition(name, family=name, cpu="256", memory="512", network_mode="awsvpc",
                                  requires_compatibilities=["FARGATE"], execution_role_arn=execution.arn,
                                  task_role_arn=task_role.arn, container_definitions=containers)
    service = aws.ecs.Service(
        name, cluster=cluster.arn, task_definition=task.arn, desired_count=2, launch_type="FARGATE",
        wait_for_steady_state=True,
        deployment_circuit_breaker=aws.ecs.ServiceDeploymentCircuitBreakerArgs(enable=True, rollback=True),
        network_configuration=aws.ecs.ServiceNetworkConfigurationArgs(
            subnets=[s.id for s in subnets], security_groups=[group.id], assign_public_ip=False))
    aws.cloudwatch.MetricAlarm(name, namespace="AWS/ECS", metric_name="CPUUtilization", statistic="Average",
                               period=60, evaluation_periods=5, threshold=90,
                               comparison_operator="GreaterThanThreshold",
                               dimensions={{"ClusterName": cluster.name, "ServiceName": service.name}})

pulumi.export("cluster", cluster.arn)
''')
    return program


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def resource_modules(build: Path) -> list[str]:
    """The Python modules that define the resource types the synthesized layers use.

    pulumi_aws loads each resource module lazily on first use, so "importing pulumi_aws" alone is
    nearly free; the floor imports exactly the modules a synth of the platform has to load.
    """
    modules: set[str] = set()
    for path in build.glob("*/*.json"):
        for resource in json.loads(path.read_text())["resources"]:
            type_ = resource["type"]
            if type_.startswith("pulumi:providers:"):
                package = PACKAGES.get(type_.rsplit(":", 1)[-1])
                if package:
                    modules.add(f"{package}.provider")
                continue
            package_key, _, rest = type_.partition(":")
            package = PACKAGES.get(package_key)
            if package is None or "/" not in rest:
                continue
            module, file = rest.split(":")[0].split("/", 1)
            if keyword.iskeyword(module):  # the SDK's package for a Python keyword: aws:lambda -> pulumi_aws.lambda_
                module += "_"
            name = f"{package}.{_snake(file)}" if module == "index" else f"{package}.{module}.{_snake(file)}"
            if importlib.util.find_spec(name) is not None:
                modules.add(name)
    return sorted(modules)


def import_floor_command(modules: list[str]) -> list[str]:
    code = "import importlib, pulumi, pulumi_policy\n" + "".join(
        f"importlib.import_module({module!r})\n" for module in modules)
    return [sys.executable, "-c", code]


def per_stack(build: Path) -> float:
    """Synth + policy of every layer x env, one fresh process each (upstream outputs from files)."""
    from shared.dag import order

    total = 0.0
    for env in ENVS:
        for layer in order():
            elapsed, _ = timed([sys.executable, "-m", "shared.bench", "one-stack", env, layer, str(build)],
                               ok=(0, 1))
            total += elapsed
    return total


def one_stack(env_name: str, layer: str, build: Path) -> int:
    """What one ``pulumi preview --policy-pack ...`` of one stack does, offline."""
    from shared.contracts import stack_reference_name
    from shared.dag import LAYER_UPSTREAMS
    from shared.envs import load_env
    from shared.policy.engine import evaluate_documents_result
    from shared.synth.engine import layer_dir, referenced_outputs, synth_program

    env = load_env(env_name)
    outputs = {}
    for upstream in LAYER_UPSTREAMS[layer]:
        document = json.loads((build / env_name / f"{upstream}.json").read_text())
        outputs[stack_reference_name(env.pulumi_org, upstream, env.name)] = referenced_outputs(document)
    document = synth_program(layer_dir(layer), stack=env.name, layer=layer, env=env.name, account_id=env.account_id,
                             region=env.region, stack_outputs=outputs, organization=env.pulumi_org)
    result = evaluate_documents_result([document], env_name)
    return 1 if result.blocking else 0


def run_bench(repeat: int, out: Path) -> dict[str, Any]:
    from rich.table import Table

    console = shared_console()
    python = sys.executable
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-") as scratch:
        root = Path(scratch)
        for env in ENVS:  # the per-stack runs read upstream outputs from here; the floor, its types
            timed([python, "-m", "shared.synth", env, "--build-dir", str(root / "build")])
        modules = resource_modules(root / "build")
        console.print(f"measuring the import floor ({len(modules)} resource modules) ...")
        figures["import_floor_s"], _ = median_of(repeat, import_floor_command(modules))
        console.print("measuring synth alone over all envs ...")
        # Not a target: where the policy run's time goes (the rest is the packs and the overlap).
        figures["synth_all_envs_s"], _ = median_of(
            repeat, [python, "-m", "shared.synth", *ENVS, "--build-dir", str(root / "synth-only")])
        console.print("measuring policy over all envs ...")
        figures["policy_all_envs_s"], figures["peak_rss_mb"] = median_of(
            repeat, [python, "-m", "shared.policy", *ENVS, "--json", str(root / "findings.json")], ok=(0, 1))
        console.print("measuring one process per layer x env ...")
        figures["per_stack_process_s"] = per_stack(root / "build")
        for count in (50, 200):
            console.print(f"measuring a catalog of {count} services ...")
            catalog, env_dir = _scenario_dir(count, root)
            scenario = _environ(PLATFORM_CATALOG=str(catalog), PLATFORM_ENV_DIR=str(env_dir))
            figures[f"services_{count}_s"], rss = median_of(repeat, [python, "-m", "shared.policy", "dev"],
                                                             env=scenario, ok=(0, 1))
            figures[f"services_{count}_peak_rss_mb"] = rss
        console.print("measuring nox -s policy -- --program of a 99-resource program ...")
        program = generated_program(root)
        timed([python, "-m", "shared.synth", "--program", str(program), "--out", str(root / "program" / "x")])
        program_modules = resource_modules(root / "program")
        floors, runs = [], []
        for _ in range(repeat):  # alternated: both see the same load
            floors.append(timed(import_floor_command(program_modules))[0])
            runs.append(timed([python, "-m", "shared.policy", "--program", str(program)], ok=(0, 1))[0])
        figures["program_import_floor_s"] = statistics.median(floors)
        figures["program_100_s"] = statistics.median(runs)
    figures = {key: round(value, 3) for key, value in figures.items()}
    checks = {name: bool(check(figures)) for name, check in TARGETS.items()}
    report = {**figures, "repeat": repeat, "python": sys.version.split()[0], "cpus": os.cpu_count(),
              "targets": checks}
    write_output(out, json.dumps(report, indent=2) + "\n", "--out")  # its folder made as the file is written

    table = Table(title=f"nox -s bench (median of {repeat})")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key, value in figures.items():
        table.add_row(key, f"{value:.3f}")
    console.print(table)
    targets = Table(title="targets")
    targets.add_column("target")
    targets.add_column("holds")
    for name, held in checks.items():
        targets.add_row(name, "yes" if held else "NO")
    console.print(targets)
    console.print(f"wrote {out}")
    return report


def main(argv: list[str]) -> int:
    if argv[:1] == ["one-stack"]:
        if len(argv) != 4:
            raise UsageError("bench one-stack ENV LAYER BUILD_DIR")
        return one_stack(argv[1], argv[2], Path(argv[3]))
    parser = argparse.ArgumentParser(prog="nox -s bench --")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure; the median is reported")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "build" / "bench.json")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target does not hold")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        raise UsageError("--repeat must be at least 1")
    check_output_path(args.out, "--out")  # before minutes of measuring, not after
    report = run_bench(args.repeat, args.out)
    return 1 if args.strict and not all(report["targets"].values()) else 0


if __name__ == "__main__":
    sys.exit(run_main(main))
