"""``python -m sprig`` runs the command line."""

from .cli import main

main()
