"""`python -m render_farm` is the `foley` command."""
from render_farm.cli import main

main()
