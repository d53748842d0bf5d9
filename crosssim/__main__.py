"""``python -m crosssim`` is the ``crosssim`` command."""

import sys

from crosssim.cli import main

sys.exit(main())
