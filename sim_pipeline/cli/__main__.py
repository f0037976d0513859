"""`python -m sim_pipeline.cli`: the `sim-pipeline` command run as a module (`bench run` starts
the main job so)."""

from sim_pipeline.cli import entry

if __name__ == "__main__":
    entry()
