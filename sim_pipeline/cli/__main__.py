"""`python -m sim_pipeline.cli`: the `sim-pipeline` command run as a module (`bench run` starts
the main job so)."""

import sys

from sim_pipeline.cli import main

if __name__ == "__main__":
    sys.exit(main())
