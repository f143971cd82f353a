import sys

from worker.cli import main

# The guard matters: the extraction pool's spawned processes import this module again.
if __name__ == "__main__":
    sys.exit(main())
