"""`python -m render_farm` is the `foley` command."""
from render_farm.cli import main

if __name__ == "__main__":  # not when a spawned worker process imports it
    main()
