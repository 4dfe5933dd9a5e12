"""``python -m velaria`` runs the ``velaria`` command."""
import sys

from .cli import main

sys.exit(main())
