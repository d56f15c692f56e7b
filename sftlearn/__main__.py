"""``python -m sftlearn`` runs the ``sftlearn`` command."""

import sys

from .cli import main

sys.exit(main())
