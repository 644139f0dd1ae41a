"""``python -m distdream``: the command line, as the ``distdream`` console script runs it."""

from .cli import run

run()
