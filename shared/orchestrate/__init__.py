"""Real Pulumi runs of the layers, in the order the DAG gives (``nox -s preview|up|destroy|refresh``).

- :mod:`~shared.orchestrate.plan` -- which layers, in which levels, ``--layers`` expansion;
- :mod:`~shared.orchestrate.scheduler` -- level by level, a level concurrently, failures stop dependents;
- :mod:`~shared.orchestrate.automation` -- the real runner (Pulumi Automation API), state and passphrase;
- :mod:`~shared.orchestrate.identity` -- before any layer: each existing stack's deployed region and account
  against the env file's (a changed one refuses the run);
- :mod:`~shared.orchestrate.replacements` -- the preview before each `up`: no stateful resource replaced or
  deleted unless named with ``--allow-replace``;
- :mod:`~shared.orchestrate.images` -- compute's `up` in two steps when its images are missing, ECS read after it;
- :mod:`~shared.orchestrate.account` -- before any layer: the account's service-linked roles (created by `up`) and
  service quotas against the env's needs (``nox -s preflight`` alone);
- :mod:`~shared.orchestrate.policy_config` -- each env's enforcement as ``--policy-pack-config`` files;
- :mod:`~shared.orchestrate.cli` -- the command line (``python -m shared.orchestrate``).
"""

from shared.orchestrate.model import Action, LayerResult, LayerRunner, Operation, OutputSink, Status

__all__ = ["Action", "LayerResult", "LayerRunner", "Operation", "OutputSink", "Status"]
