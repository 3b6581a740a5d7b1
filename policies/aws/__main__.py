"""CrossGuard pack entry point (``pulumi preview --policy-pack ../../policies/<pack>`` from stacks/<layer>:
policies/README.md): see shared.policy.packs.serve."""

import sys
from pathlib import Path

PACK_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(PACK_DIR.parent.parent))  # the CLI runs this in the pack directory
try:
    from shared.policy.packs import serve  # after the sys.path line: it needs the repo root
except ModuleNotFoundError as error:  # `pulumi policy publish` uploads the pack's folder alone
    sys.exit(f"{PACK_DIR}: this pack runs from its folder policies/<pack> of the repository (it reads shared/ and "
             "policies/catalog.yaml): a published copy is not supported; run `nox -s preview|up -- ENV`"
             if error.name == "shared" else str(error))

serve(PACK_DIR)
