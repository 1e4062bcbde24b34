"""`python -m infra.standins`: serve the stand-ins (the local topology's entry point)."""

from infra.standins.app import main

main()
