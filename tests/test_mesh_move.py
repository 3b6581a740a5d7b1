"""Moving an env from App Mesh to Service Connect in place: what `up` does to each ECS service.

ECS UpdateService accepts both changes (botocore ecs UpdateService: "You can remove existing
serviceRegistries by passing an empty list", and serviceConnectConfiguration "triggers a new service
deployment"); the AWS provider marks neither ``service_registries`` nor ``service_connect_configuration``
as forcing a new resource and sends both in one UpdateService call (``serviceRegistries: []`` when the
block is removed). So the ECS service is updated in place and rolls out new tasks; only its task
definition is a new revision. The offline plan diff must say the same.
"""

from __future__ import annotations

from typing import Any

from shared.catalog import load_catalog
from shared.plan_diff import diff_documents
from shared.synth.engine import synth_env

SERVICE = "aws:ecs/service:Service"
TASK = "aws:ecs/taskDefinition:TaskDefinition"


def test_switching_the_mesh_provider_updates_each_ecs_service_in_place(edit_env: Any) -> None:
    edit_env("dev", lambda data: data["mesh"].update(provider="appmesh", appmesh_end_of_support_acknowledged=True))
    appmesh = synth_env("dev")["compute"]
    edit_env("dev", lambda data: data["mesh"].update(provider="service-connect",
                                                     appmesh_end_of_support_acknowledged=False))
    service_connect = synth_env("dev")["compute"]

    changes = diff_documents("compute", appmesh, service_connect).changes
    services = {change.urn.rsplit("::", 1)[-1]: change for change in changes if change.type == SERVICE}
    assert set(services) == set(load_catalog().names())
    for name, change in services.items():
        assert change.action == "update", (name, change.inputs)
        assert {"serviceRegistries", "serviceConnectConfiguration"} <= set(change.inputs)
    tasks = [change for change in changes if change.type == TASK]
    assert tasks and all(change.action == "replace" for change in tasks)
