"""``python -m distdream``: the command line, as the ``distdream`` console script runs it."""

import sys

from .cli import main

sys.exit(main())
