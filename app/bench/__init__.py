"""`python -m app bench`: what a training step, the data loader and each measurement cost, as ratios
measured side by side in one run (so the figures mean the same on any machine)."""
