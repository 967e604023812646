"""`python -m maestro_lite` runs the CLI."""

from .cli import main

main()
