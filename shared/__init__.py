"""Helper package shared by every layer of the ML platform.

Everything a layer program needs that is not specific to that one layer lives here: the
environment schema (:mod:`shared.envs`), the service catalog (:mod:`shared.catalog`), the layer
DAG (:mod:`shared.dag`), the typed contracts between layers (:mod:`shared.contracts`), the
components layers compose (:mod:`shared.components`) and the offline synth (:mod:`shared.synth`).
"""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
"""Root of the monorepo (the folder holding ``stacks/``, ``environments/``, ``policies/``)."""
