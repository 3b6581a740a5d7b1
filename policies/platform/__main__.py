"""CrossGuard pack entry point: ``pulumi preview --policy-pack policies/<pack>``.

The CLI runs this file (``python -u -m pulumi.policy <engine> .``) with the pack directory as the
working directory, so the repo root (where ``shared`` lives) goes on ``sys.path`` first. Everything
else -- which rules exist, their ids and descriptions -- comes from ``rules/<rule-id>.py`` and
``policies/catalog.yaml`` through :func:`shared.policy.packs.serve`. The offline engine
(``nox -s policy``) starts this very file the same way and configures every rule's enforcement level
from the env.
"""

import sys
from pathlib import Path

PACK_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(PACK_DIR.parent.parent))

from shared.policy.packs import serve  # after the sys.path line: it needs the repo root

serve(PACK_DIR)
