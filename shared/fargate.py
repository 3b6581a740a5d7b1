"""The cpu/memory pairs Fargate accepts: one table for the compute layer and the policy rule; and the share of
a service's tasks a rolling deployment runs, one number for the compute layer and the checks that count its peak.

Source: "Task CPU and memory" in the Amazon ECS developer guide; RegisterTaskDefinition refuses any
other pair (Linux tasks; Windows tasks start at 1024 cpu).
"""

from __future__ import annotations

#: cpu units -> the memory sizes (MiB) Fargate accepts with it.
FARGATE_SIZES: dict[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: tuple(range(1024, 4096 + 1, 1024)),
    1024: tuple(range(2048, 8192 + 1, 1024)),
    2048: tuple(range(4096, 16384 + 1, 1024)),
    4096: tuple(range(8192, 30720 + 1, 1024)),
    8192: tuple(range(16384, 61440 + 1, 4096)),
    16384: tuple(range(32768, 122880 + 1, 8192)),
}
#: What the platform's task definitions ask Fargate for (runtime_platform), and the OCI platform of an image
#: that runs there: os "linux", architecture "amd64" (OCI image spec, "Properties" of the image config: GOARCH
#: values; ECS RuntimePlatform.cpuArchitecture X86_64 | ARM64 in the botocore ecs model).
OPERATING_SYSTEM_FAMILY = "LINUX"
CPU_ARCHITECTURE = "X86_64"
IMAGE_PLATFORM = ("linux", "amd64")
#: A catalog service's ``architecture`` (its image's OCI architecture) -> the task definition's
#: ``runtimePlatform.cpuArchitecture`` (botocore ecs RuntimePlatform: "You can run your Linux tasks on an ARM-based
#: platform by setting the value to ARM64", on Fargate platform 1.4.0 and later, Fargate Spot included).
CPU_ARCHITECTURES: dict[str, str] = {"amd64": CPU_ARCHITECTURE, "arm64": "ARM64"}


def image_platform(architecture: str = IMAGE_PLATFORM[1]) -> tuple[str, str]:
    """The OCI (os, architecture) of an image a task of that ``architecture`` runs."""
    return IMAGE_PLATFORM[0], architecture


#: The Fargate capacity providers, by an env's ``services.<svc>.capacity`` (shared.envs.ServiceSettings): each ECS
#: service names its own in a capacity provider strategy, and the cluster is associated with both (botocore ecs
#: CapacityProviderStrategyItem: "The Fargate capacity providers are available to all accounts and only need to be
#: associated with a cluster to be used"). FARGATE_SPOT runs a task on spare capacity and takes it back with a
#: two-minute warning (a SIGTERM, then the stopTimeout, at most Fargate's 120 s).
CAPACITY_PROVIDERS: dict[str, str] = {"on_demand": "FARGATE", "spot": "FARGATE_SPOT"}
#: A task's ephemeral storage when its task definition sets none (Linux platform 1.4.0 and later), GiB: it holds the
#: pulled (compressed) image and its unpacked layers besides the bind mounts (ECS developer guide, "Fargate task
#: ephemeral storage for Amazon ECS").
DEFAULT_EPHEMERAL_STORAGE_GIB = 20
#: The regions (of shared/regions.py) where Fargate runs Linux tasks in some AZs only, by AZ ID (ECS guide,
#: "Supported Regions for Amazon ECS on AWS Fargate": us-west-1 usw1-az1 & usw1-az3 only, ap-northeast-1 apne1-az1,
#: apne1-az2 & apne1-az4 only). AZ names map to IDs per account there, so the account preflight checks the IDs.
FARGATE_ZONE_IDS: dict[str, tuple[str, ...]] = {
    "us-west-1": ("usw1-az1", "usw1-az3"),
    "ap-northeast-1": ("apne1-az1", "apne1-az2", "apne1-az4"),
}
#: The open-files limit (soft and hard) Fargate gives every container of a Linux task that sets no ``nofile`` ulimit
#: (botocore ecs ContainerDefinition.ulimits: "The default nofile soft limit is 65535 and the default hard limit is
#: 65535"). A container definition's ulimit replaces it, so a lower one (App Mesh's examples set Envoy's to 15000,
#: a raise from the EC2 default of 1024) takes descriptors away on Fargate.
FARGATE_DEFAULT_NOFILE = 65535
#: Windows containers on Fargate: at least 1 vCPU (ECS guide, "Amazon ECS task definition differences for
#: Fargate"), and at most 4: the 8 and 16 vCPU sizes require the Linux platform 1.4.0 or later (ECS guide,
#: "Amazon ECS task definition parameters for Fargate", task size).
WINDOWS_MIN_CPU = 1024
WINDOWS_MAX_CPU = 4096
#: The ECS services' ``deploymentConfiguration.maximumPercent`` (shared.components.compute_service): a rolling
#: deployment starts the new tasks before it stops the old ones, so a service runs up to this share of its desired
#: count meanwhile. The Fargate vCPU quota note (shared.orchestrate.account) and the broker capacity note
#: (shared.broker_capacity) count the peak with it.
DEPLOYMENT_MAXIMUM_PERCENT = 200


#: Why a key that asks for a GPU is refused (catalog or env file): ECS reserves GPUs for a container on the EC2
#: container instance its task is launched on (botocore ecs ResourceRequirement: "can't exceed the number of available
#: GPUs on the container instance"), and Fargate has none; every service of the platform runs on Fargate.
NO_GPU = ("Fargate has no GPU, and every service of the platform runs on Fargate: use a CPU build of the model, "
          f"up to cpu {max(FARGATE_SIZES)} with memory {FARGATE_SIZES[max(FARGATE_SIZES)][-1]} (16 vCPU, 120 GiB), "
          "or run the GPU work outside the platform (SageMaker, ECS or AWS Batch on GPU EC2 instances) and hand its "
          "results over by the broker or the model-artifact bucket")
_GPU_WORDS = ("gpu", "accelerator", "cuda", "nvidia")


def unknown_key_reason(key: object) -> str:
    """The reason given for an unknown key: "unknown key", and for one that asks for a GPU, why there is none."""
    asks_gpu = isinstance(key, str) and any(word in key.lower() for word in _GPU_WORDS)
    return f"unknown key: {NO_GPU}" if asks_gpu else "unknown key"


def fargate_size_problem(cpu: int, memory: int) -> str | None:
    """Why Fargate refuses ``cpu``/``memory``, or None when the pair is valid."""
    if cpu not in FARGATE_SIZES:
        return f"cpu {cpu} is not a Fargate size (one of {', '.join(map(str, FARGATE_SIZES))})"
    if memory not in FARGATE_SIZES[cpu]:
        allowed = FARGATE_SIZES[cpu]
        return (f"memory {memory} does not go with cpu {cpu} on Fargate "
                f"(allowed: {allowed[0]}..{allowed[-1]} MiB in the steps of the ECS size table)")
    return None
