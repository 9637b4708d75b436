"""``python -m keystead.core.cli``."""

from . import main

main()
