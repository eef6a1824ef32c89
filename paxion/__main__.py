"""`python -m paxion` runs the command line (also under torchrun)."""

from paxion.cli import main

main()
