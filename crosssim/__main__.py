"""``python -m crosssim`` is the ``crosssim`` command."""

import sys

from crosssim.cli import main

if __name__ == "__main__":  # not when a spawned/forkserver child imports this module
    sys.exit(main())
