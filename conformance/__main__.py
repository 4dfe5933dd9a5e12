"""``python -m velaria.conformance --target MODULE [--clause PREFIX] [--xfail FILE] [--verbose]``."""
import sys

from .runner import main

if __name__ == "__main__":
    sys.exit(main())
