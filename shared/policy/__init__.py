"""The offline policy engine: the CrossGuard packs of ``policies/`` run over synth JSON.

- :mod:`shared.policy.packs` loads a pack's rule modules (used by each pack's ``__main__.py``, so it
  stays light: no gRPC client, no synth);
- :mod:`shared.policy.engine` starts the packs as processes and talks the Analyzer protocol to them
  (``evaluate_documents``, ``evaluate_envs``, ``PolicyEngine``, ``pack_config``);
- :mod:`shared.policy.enforcement` computes each rule's level per env and applies suppressions;
- :mod:`shared.policy.findings` holds ``Finding`` (the findings JSON: README, File formats) and ``PolicyResult``;
- :mod:`shared.policy.reporting` renders findings (table, JSON, SARIF 2.1.0);
- :mod:`shared.policy.taggable` generates the list of AWS types ``tags-required`` checks;
- ``python -m shared.policy`` is the command line behind ``nox -s policy``.
"""
