"""``python -m albert_ixrt``: the same command line as the ``albert-ixrt`` script."""
import sys

from .cli import main

sys.exit(main())
