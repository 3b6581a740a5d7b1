"""CrossGuard pack entry point: ``pulumi preview --policy-pack policies/<pack>``.

The CLI runs this file (``python -u -m pulumi.policy <engine> .``) with the pack directory as the
working directory, so the repo root (where ``shared`` lives) goes on ``sys.path`` first. Everything
else -- which rules exist, their ids and descriptions -- comes from ``rules/<rule-id>.py`` and
``policies/catalog.yaml``. The offline engine (``nox -s policy``) starts this very file the same way
and configures every rule's enforcement level from the env.
"""

import sys
from pathlib import Path


def main() -> None:
    pack_dir = Path(__file__).resolve().parent
    sys.path.insert(0, str(pack_dir.parent.parent))

    from pulumi_policy import EnforcementLevel, PolicyPack

    from shared.policy.fast_analyzer import install
    from shared.policy.packs import load_policies, pack_name

    install()  # convert each resource once, not once per rule; serve the batch method

    PolicyPack(
        name=pack_name(pack_dir.name),
        policies=load_policies(pack_dir),
        # Advisory unless configured: the offline engine, or a --policy-pack-config file written from
        # shared.policy.engine.pack_config(), sets each rule's level for the env.
        enforcement_level=EnforcementLevel.ADVISORY,
    )


main()
