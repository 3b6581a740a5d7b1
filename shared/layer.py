"""What every layer program starts with: its env, its AWS provider, its upstream contracts.

``stacks/<layer>/__main__.py`` reads like a table of contents::

    layer = Layer("network")                  # env from the stack name, explicit AWS provider
    network = VpcNetwork(..., opts=layer.opts) # components from shared.components
    layer.export(vpc_id=..., ...)              # exactly the layer's contract
"""

from __future__ import annotations

import os
from typing import Any

import pulumi
import pulumi_aws as aws

from shared.contracts import Upstream, export_contract, own_last_outputs, read_upstreams
from shared.envs import EnvConfig, env_path, load_env
from shared.orchestrate.identity import provider_name
from shared.protect import protect_stateful_only
from shared.published import publish, published_mode, read_upstreams_published


def check_env_unchanged(env_name: str) -> None:
    """ConfigError where the orchestrator handed the run's env file digest (:data:`shared.orchestrate.model
    .ENV_DIGEST_VARIABLE`) and the file reads otherwise now: it changed after the run's checks (a promote, an edit or a
    checkout in the same clone during a long run), and this layer would deploy what they never judged."""
    from shared.errors import ConfigError
    from shared.orchestrate.model import ENV_DIGEST_VARIABLE, env_file_digest

    judged = os.environ.get(ENV_DIGEST_VARIABLE)
    if not judged:
        return  # not run by the orchestrator (a `pulumi up` by hand, the offline synth)
    path = env_path(env_name)
    try:
        read = env_file_digest(path)
    except OSError as error:
        raise ConfigError(str(path), "(file)", f"cannot be read ({error.strerror or error}) while this run's checks "
                                               "judged it: this layer stops before it declares anything") from None
    if read != judged:
        raise ConfigError(str(path), "(file)", (
            "changed after this run's checks judged it (a promote, an edit or a checkout in this clone while the run "
            "was under way): this layer stops before it declares anything, and the layers reading it are skipped. "
            "Run again, from a clone nothing else changes during the run"))


class Layer:
    """The context of one layer program for one environment (stack name = env name)."""

    def __init__(self, name: str) -> None:
        self.name = name
        check_env_unchanged(pulumi.get_stack())
        self.env: EnvConfig = load_env(pulumi.get_stack())
        # Before any resource: `protect` comes from the resource type alone (shared.protect), never
        # from a protected parent.
        pulumi.runtime.register_stack_transformation(protect_stateful_only(self.env.protect))
        # An explicit provider, never ambient config: the region and account are pinned by the env
        # file (allowed_account_ids stops a deploy with the wrong credentials), and the default tags
        # put env/layer/team/cost-center on every taggable resource. Its name is the one whose recorded
        # region and account the orchestrator compares with the env file before a run (shared.orchestrate.identity).
        self.aws = aws.Provider(
            provider_name(self.env.name),
            region=self.env.region,
            allowed_account_ids=[self.env.account_id],
            default_tags=aws.ProviderDefaultTagsArgs(tags=self.env.common_tags(name)),
        )
        # A pull request's preview (the workflow sets shared.published.PUBLISHED_VARIABLE): broker and messaging are
        # read from their published contracts, since the read-only role may not read their states.
        # An up never does: it deploys from the states (shared.published.published_mode refuses the variable).
        published = published_mode(os.environ, preview=pulumi.runtime.is_dry_run())
        self.upstreams: dict[str, Upstream] = (
            read_upstreams_published(name, self.env.pulumi_org, self.env.name, self.env.region)
            if published else read_upstreams(name, self.env.pulumi_org, self.env.name))

    @property
    def opts(self) -> pulumi.ResourceOptions:
        """Options for the layer's top-level components: children inherit the AWS provider."""
        return pulumi.ResourceOptions(providers={"aws": self.aws})

    def upstream(self, layer: str) -> Upstream:
        return self.upstreams[layer]

    @property
    def targeted(self) -> bool:
        """Whether this run is a targeted update (:data:`shared.orchestrate.model.TARGETED_VARIABLE`): the resources it
        does not target keep their state, while the stack's outputs are still what the program exports."""
        from shared.orchestrate.model import TARGETED_VARIABLE

        return os.environ.get(TARGETED_VARIABLE) == "1"

    def last_outputs(self) -> dict[str, Any] | None:
        """This layer's own outputs from its last deployment (:func:`~shared.contracts.own_last_outputs`)."""
        return own_last_outputs(self.name, self.env.pulumi_org, self.env.name)

    def export(self, **values: Any) -> None:
        """Export exactly the layer's contract; broker and messaging also publish its non-secret part
        (:func:`shared.published.publish`) for pull requests' previews of compute."""
        from shared.catalog import load_catalog
        from shared.dag import PUBLISHED_LAYERS

        export_contract(self.name, **values)
        if self.name in PUBLISHED_LAYERS:
            publish(self.name, self.env.name, values, self.opts, services=len(load_catalog().services))
