"""CrossGuard pack entry point (``pulumi preview --policy-pack ../../policies/<pack>`` from stacks/<layer>:
policies/README.md): see shared.policy.packs.serve."""

import sys
from pathlib import Path

PACK_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(PACK_DIR.parent.parent))  # the CLI runs this in the pack directory

from shared.policy.packs import serve  # after the sys.path line: it needs the repo root

serve(PACK_DIR)
