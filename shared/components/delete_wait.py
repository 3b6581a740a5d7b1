"""The platform's drains: Pulumi dynamic resources that hold nothing and whose deletion waits for AWS.

Some deletions AWS finishes on its own, after the call that started them returned: ECS removes a deleted ECS service's
Service Connect name from its namespace (:mod:`shared.components.service_connect_drain`), Lambda deletes a deleted
function's network interfaces (:mod:`shared.components.lambda_eni_drain`). A drain placed between the resource whose
deletion starts it and the resources that must outlive it (by ``depends_on``: Pulumi deletes a resource before those it
depends on) makes the deletion wait. Creating one calls nothing, changing its inputs only records them (in place, but
for :attr:`DeleteWaitProvider.replace_keys`), and deleting one waits.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi.dynamic


class DeleteWaitProvider(pulumi.dynamic.ResourceProvider):
    """Create: nothing; update: records the inputs; delete: :meth:`wait`. Subclasses name their id and inputs."""

    serialize_as_secret_always = False  # it carries no credential: boto3 takes the deployer's own
    #: inputs whose change makes another drain (the old one, deleted, waits where it was)
    replace_keys: tuple[str, ...] = ()
    #: the other inputs it records
    update_keys: tuple[str, ...] = ()

    def resource_id(self, props: dict[str, Any]) -> str:
        raise NotImplementedError

    def wait(self, props: dict[str, Any]) -> None:
        raise NotImplementedError

    def create(self, props: dict[str, Any]) -> pulumi.dynamic.CreateResult:
        return pulumi.dynamic.CreateResult(id_=self.resource_id(props), outs=props)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> pulumi.dynamic.DiffResult:
        replaces = [key for key in self.replace_keys if olds.get(key) != news.get(key)]
        changed = bool(replaces) or any(olds.get(key) != news.get(key) for key in self.update_keys)
        return pulumi.dynamic.DiffResult(changes=changed, replaces=replaces, delete_before_replace=False)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> pulumi.dynamic.UpdateResult:
        return pulumi.dynamic.UpdateResult(outs={**olds, **news})

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        self.wait(props)
