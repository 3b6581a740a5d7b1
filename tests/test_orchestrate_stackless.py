"""An env deployed from stacks the env file no longer points at (another ``pulumi_org`` or state backend).

Every stack is then absent, which looks like a first ``up``; but the account already holds the env's network (the
account preflight, shared/orchestrate/account.py, reads its VPCs and finds the one carrying the network layer's
default tags), so ``up`` is refused before any layer runs (shared/orchestrate/identity.py, ``stackless_refusal``).
moto plays the account; the orchestrator runs with the recording runner of test_orchestrate.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from pulumi import automation as auto

from shared.envs import EnvConfig, load_env
from tests.aws_helpers import MotoAccounts
from tests.test_orchestrate import RecordingRunner, management_api
from tests.test_orchestrate_account import Clients, checker, roomy, up

__all__ = ["management_api"]  # its autouse fixture: the stacks' management endpoint answers on loopback


class Stackless(RecordingRunner):
    """No stack of the env exists on the backend in use."""

    def stack_outputs(self, layer: str, env: EnvConfig) -> Mapping[str, Any] | None:
        return None


def vpc_in_account(env_name: str, tags: dict[str, str], region: str | None = None) -> str:
    env = load_env(env_name)
    ec2 = MotoAccounts.client(env.account_id, region or env.region, "ec2")
    vpc = str(ec2.create_vpc(CidrBlock="10.10.0.0/16")["Vpc"]["VpcId"])
    ec2.create_tags(Resources=[vpc], Tags=[{"Key": key, "Value": value} for key, value in tags.items()])
    return vpc


def network_tags(env_name: str) -> dict[str, str]:
    """What the network layer's VPC carries: the provider's default tags and its Name."""
    return {**load_env(env_name).common_tags("network"), "Name": f"{env_name}-vpc"}


def test_an_up_without_the_network_stack_where_the_env_is_deployed_is_refused(
        moto_aws: None, capsys: pytest.CaptureFixture[str]) -> None:
    vpc = vpc_in_account("dev", network_tags("dev"))
    code, output, runner = up(["up", "dev", "--yes"], checker(Clients(roomy())), Stackless())
    error = capsys.readouterr().err
    assert code == 2 and runner.started() == [], output
    assert f"VPC {vpc} carries its tags" in error and "stack organization/network/dev does not exist" in error
    assert "pulumi_org, state.backend_url or PULUMI_BACKEND_URL" in error
    # Pulumi Cloud refuses a rename to another owner (pkg/backend/httpstate/backend.go RenameStack): the hint is the
    # console's Transfer stack for another org, `pulumi stack migrate` for another backend
    assert "Transfer stack" in error and "pulumi stack migrate" in error
    assert "rename` refuses a new owner" in error and "`pulumi stack rename` (another org)" not in error
    assert "leftover" in error and "delete it" in error  # the one case where the VPC itself is what to remove

    code, output, runner = up(["preview", "dev"], checker(Clients(roomy())), Stackless())
    assert code == 0 and "note: up would be refused: tests/fixtures/environments/dev.yaml" in output and vpc in output


def test_a_second_up_through_the_stack_that_deployed_it_runs(moto_aws: None) -> None:
    vpc_in_account("dev", network_tags("dev"))
    code, output, runner = up(["up", "dev", "--yes", "--layers", "network"], checker(Clients(roomy())))
    assert code == 0 and runner.started() == ["network"], output


@pytest.mark.parametrize("tags", [
    {"Name": "dev-vpc"},  # named like it, not tagged by the platform
    {**network_tags("staging"), "Name": "dev-vpc"},  # another env's
    {**network_tags("dev"), "managed-by": "terraform"},  # another tool's
])
def test_a_first_up_beside_vpcs_that_are_not_the_envs_network_runs(moto_aws: None, tags: dict[str, str]) -> None:
    vpc_in_account("dev", tags)
    code, output, runner = up(["up", "dev", "--yes", "--layers", "network"], checker(Clients(roomy())), Stackless())
    assert code == 0 and runner.started() == ["network"], output


def test_the_envs_network_in_another_region_is_not_this_one(moto_aws: None) -> None:
    vpc_in_account("dev", network_tags("dev"), region="us-east-1")
    code, output, runner = up(["up", "dev", "--yes", "--layers", "network"], checker(Clients(roomy())), Stackless())
    assert code == 0 and runner.started() == ["network"], output


class Undecryptable(RecordingRunner):
    """The network stack exists, but its outputs cannot be read here: `pulumi stack output --show-secrets` decrypts
    them with the stack's secrets provider, which these credentials may not use."""

    def stack_outputs(self, layer: str, env: EnvConfig) -> Mapping[str, Any] | None:
        raise auto.CommandError(auto.CommandResult(
            stdout="", code=255, stderr="error: could not deserialize deployment: decrypting secret value: failed to "
                                        "decrypt with the awskms secrets provider: access denied"))

    def stack_exists(self, layer: str, env: EnvConfig) -> bool:
        return True


def test_whether_the_network_stack_exists_is_asked_without_decrypting_its_outputs(moto_aws: None) -> None:
    """Where the account holds the env's network, `up` asks only whether its stack exists (`pulumi stack select`):
    credentials that may read the backend but not decrypt the stack's outputs run the up."""
    vpc_in_account("dev", network_tags("dev"))
    code, output, runner = up(["up", "dev", "--yes", "--layers", "network"], checker(Clients(roomy())),
                              Undecryptable())
    assert code == 0 and runner.started() == ["network"], output


class Unreadable(RecordingRunner):
    """Whether the network stack exists cannot be read (the backend answers AccessDenied)."""

    def stack_exists(self, layer: str, env: EnvConfig) -> bool:
        raise auto.CommandError(auto.CommandResult(
            stdout="", code=255, stderr="error: could not list stacks: read s3://state/.pulumi/stacks/network: "
                                        "AccessDenied"))


def test_a_network_stack_that_cannot_be_read_stops_the_up_with_its_reason(
        moto_aws: None, capsys: pytest.CaptureFixture[str]) -> None:
    """Where the account holds the env's network, `up` asks whether its stack exists: a read that fails is the
    refusal's reason (exit 2, nothing run), not a traceback; `preview` notes it and goes on."""
    vpc = vpc_in_account("dev", network_tags("dev"))
    code, output, runner = up(["up", "dev", "--yes", "--layers", "network"], checker(Clients(roomy())), Unreadable())
    error = capsys.readouterr().err
    assert code == 2 and runner.started() == [], output
    assert "organization/network/dev" in error and vpc in error and "AccessDenied" in error
    assert "Traceback" not in error

    code, output, runner = up(["preview", "dev", "--layers", "network"], checker(Clients(roomy())), Unreadable())
    assert code == 0 and runner.started() == ["network"], output
    assert "note: whether" in output and "organization/network/dev" in output and "AccessDenied" in output


def test_the_migrate_hint_keeps_the_envs_kms_secrets_provider(edit_env: Any) -> None:
    """`pulumi stack migrate` re-encrypts the stack's secrets with its --secrets-provider, "default" unless given
    (pkg/cmd/pulumi/stack/stack_migrate.go): on a self-managed backend that is a passphrase, so a stack of an env
    whose secrets are on a KMS key would arrive passphrase-encrypted, and the orchestrator's runs, which ask for no
    passphrase there (state.secrets_provider names the key), fail on its first secret. The hint passes the env's."""
    from shared.orchestrate.identity import stackless_refusal

    assert "--secrets-provider" not in stackless_refusal(load_env("dev"), "organization/network/dev", ["vpc-1"])
    kms = "awskms://alias/pulumi-state?region=eu-west-1"
    state = {"backend_url": "s3://acme-state/platform", "secrets_provider": kms}
    edit_env("dev", lambda data: data.update(state=state))
    refusal = stackless_refusal(load_env("dev"), "organization/network/dev", ["vpc-1"])
    assert f"--target <new org>/<layer>/<env> --secrets-provider '{kms}'`" in refusal


# -- IAM names are account-wide: an env of the same name in another region, folder, org or backend -----------------


def refused(argv: list[str], runner: RecordingRunner, capsys: pytest.CaptureFixture[str]) -> str:
    """The stderr of an `up` refused before any layer (exit 2)."""
    code, output, runner = up(argv, checker(Clients(roomy())), runner)
    assert code == 2 and runner.started() == [], output
    return capsys.readouterr().err


def role_in_account(env_name: str, role_name: str) -> None:
    env = load_env(env_name)
    trust = '{"Version": "2012-10-17", "Statement": []}'
    MotoAccounts.client(env.account_id, env.region, "iam").create_role(RoleName=role_name,
                                                                       AssumeRolePolicyDocument=trust)


def test_the_layers_roles_named_after_the_env_are_read_where_the_layers_run() -> None:
    from shared.orchestrate.account import account_wide_roles

    dev = load_env("dev")
    assert [(role.layer, role.role_name) for role in account_wide_roles(dev, ["network", "broker", "messaging"])] == [
        ("network", "ml-platform-dev-flow-logs"), ("broker", "ml-platform-dev-deploy-runner"),
        ("broker", "ml-platform-dev-broker-admin-rotation"),
        ("messaging", "ml-platform-dev-queue-metrics")]
    assert account_wide_roles(dev, ["discovery", "mesh", "compute"]) == []


def test_an_up_whose_iam_role_an_env_of_its_name_holds_elsewhere_in_the_account_is_refused(
        moto_aws: None, capsys: pytest.CaptureFixture[str]) -> None:
    # dev deployed from another folder to us-east-1 of the same account: its network (regional) is not in the way,
    # but broker's ml-platform-dev-deploy-runner (IAM: account-wide) would stop this up after network and discovery.
    role_in_account("dev", "ml-platform-dev-deploy-runner")
    error = refused(["up", "dev", "--yes"], Stackless(), capsys)
    assert ("account 111111111111 already holds the IAM role ml-platform-dev-deploy-runner (the deploy runner's "
            "service role) that broker names after the env, but the stack organization/broker/dev does not exist") \
        in error
    assert "IAM names are account-wide, not regional" in error and "Give this env another name" in error

    code, output, _ = up(["preview", "dev"], checker(Clients(roomy())), Stackless())
    assert code == 0 and "note: up would be refused: " in output and "ml-platform-dev-deploy-runner" in output


def test_the_roles_of_the_envs_own_stacks_or_of_layers_not_run_stop_nothing(moto_aws: None) -> None:
    role_in_account("dev", "ml-platform-dev-deploy-runner")
    role_in_account("dev", "ml-platform-dev-queue-metrics")
    code, output, runner = up(["up", "dev", "--yes"], checker(Clients(roomy())))  # the stacks that made them
    assert code == 0 and "ml-platform-dev-deploy-runner" not in output and "queue-metrics" not in output, output
    code, output, runner = up(["up", "dev", "--yes", "--layers", "network"], checker(Clients(roomy())), Stackless())
    assert code == 0 and runner.started() == ["network"], output


# -- compute's registry holds another env's repositories ------------------------------------------------------------


def repository_of_env(env_name: str, service: str, owner: str) -> None:
    """``service``'s repository as compute of env ``owner`` creates it (KMS, with the provider's default tags), in
    ``env_name``'s account and region."""
    env = load_env(env_name)
    ecr = MotoAccounts.client(env.account_id, env.region, "ecr")
    ecr.create_repository(repositoryName=f"ml-platform/{service}", imageTagMutability="IMMUTABLE",
                          encryptionConfiguration={"encryptionType": "KMS"},
                          tags=[{"Key": key, "Value": value} for key, value in {
                              **load_env(env_name).common_tags("compute"), "env": owner}.items()])


def test_an_up_where_another_env_holds_the_registry_is_refused_before_any_layer(
        moto_aws: None, capsys: pytest.CaptureFixture[str]) -> None:
    # sandbox, from another folder of env files, deployed to staging's account and region: the loader cannot see
    # it, and staging's compute would fail on ml-platform/<service> after network, broker and messaging ran.
    repository_of_env("staging", "gateway", "sandbox")
    repository_of_env("staging", "inference", "sandbox")
    error = refused(["up", "staging", "--yes"], Stackless(), capsys)
    assert ("account 222222222222 (eu-west-1) already holds env sandbox's ECR repositories ml-platform/gateway, "
            "ml-platform/inference (their env tag)") in error
    assert "Deploy staging to another account or region, or destroy sandbox first. Nothing was run." in error

    code, output, _ = up(["preview", "staging"], checker(Clients(roomy())), Stackless())
    assert code == 0 and "note: up would be refused: " in output and "env sandbox's ECR repositories" in output


def test_the_envs_own_repositories_or_a_run_without_compute_stop_nothing(moto_aws: None) -> None:
    repository_of_env("staging", "gateway", "staging")
    code, output, runner = up(["up", "staging", "--yes"], checker(Clients(roomy())))
    assert code == 0 and "ECR repositories" not in output, output
    repository_of_env("staging", "inference", "sandbox")
    code, output, runner = up(["up", "staging", "--yes", "--layers", "network"], checker(Clients(roomy())))
    assert code == 0 and runner.started() == ["network"], output


def test_a_broker_stack_that_cannot_be_read_where_its_role_exists_stops_the_up_with_its_reason(
        moto_aws: None, capsys: pytest.CaptureFixture[str]) -> None:
    role_in_account("dev", "ml-platform-dev-deploy-runner")
    error = refused(["up", "dev", "--yes"], Unreadable(), capsys)
    assert "whether the stack organization/broker/dev exists could not be read" in error and "AccessDenied" in error
    assert "Traceback" not in error
    code, output, _ = up(["preview", "dev"], checker(Clients(roomy())), Unreadable())
    assert code == 0 and "note: whether the stack organization/broker/dev exists" in output, output


def test_the_iam_roles_the_layers_create_are_counted_against_the_account_s_room(moto_aws: None) -> None:
    """IAM's quota of roles is the account's (1,000 by default), shared by every region and tool: where the room left
    is less than the roles the run's layers create, a note says so before CreateRole fails a layer midway."""
    from shared.orchestrate.account import AccountReport, AwsAccountCheck, roles_declared

    dev = load_env("dev")
    assert roles_declared(dev, ["network", "discovery", "mesh", "broker", "messaging", "compute"]) == {
        "network": 1, "broker": 2, "messaging": 1, "compute": 8}
    assert roles_declared(dev, ["discovery", "mesh"]) == {}
    iam = MotoAccounts.client(dev.account_id, dev.region, "iam")
    report = AccountReport()
    AwsAccountCheck._check_iam_roles(dev, iam, ["network", "compute"], report)
    assert report.notes == []
    assert report.lines == ["IAM roles: the account holds 0 of 1000; dev's layers of the run create network 1, "
                            "compute 8"]

    class Crowded:
        def get_account_summary(self) -> dict[str, Any]:
            return {"SummaryMap": {"Roles": 995, "RolesQuota": 1000, "Users": 3}}

    report = AccountReport()
    AwsAccountCheck._check_iam_roles(dev, Crowded(), ["compute"], report)
    assert report.refusals == [] and len(report.notes) == 1
    assert ("IAM roles: account 111111111111 holds 995 of the 1000 it may (GetAccountSummary), room for 5 more, and "
            "dev's layers of the run create 8 (compute 8) where they do not exist yet") in report.notes[0]
    report = AccountReport()
    AwsAccountCheck._check_iam_roles(dev, Crowded(), ["network", "messaging"], report)
    assert report.notes == []  # 2 fit in 5


@pytest.mark.parametrize(("held", "notes"), [(993, 1), (992, 0)])
def test_the_iam_room_edge(held: int, notes: int) -> None:
    """compute creates 8 roles in dev: 8 of room are enough, 7 are not."""
    from shared.orchestrate.account import AccountReport, AwsAccountCheck

    class Summary:
        def get_account_summary(self) -> dict[str, Any]:
            return {"SummaryMap": {"Roles": held, "RolesQuota": 1000}}

    report = AccountReport()
    AwsAccountCheck._check_iam_roles(load_env("dev"), Summary(), ["compute"], report)
    assert len(report.notes) == notes, report.notes
