"""`python -m gateway` is the `edxml-gateway` command."""

from gateway.cli import run

run()
