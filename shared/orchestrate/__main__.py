import sys

from shared.orchestrate.cli import main

sys.exit(main())
