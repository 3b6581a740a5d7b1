"""The offline policy engine: the CrossGuard packs of ``policies/`` run over synth JSON.

:mod:`shared.policy.packs` loads a pack's rule modules (used by each pack's ``__main__.py``, so it
stays light: no gRPC client, no synth), :mod:`shared.policy.engine` starts the packs as processes and
talks the Analyzer protocol to them, :mod:`shared.policy.reporting` renders findings (table, JSON,
SARIF) and ``python -m shared.policy`` is the command line behind ``nox -s policy``.
"""
