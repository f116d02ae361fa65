"""`make evaluate`: rebuild a checkpoint's run, measure it (measure.py) and write the JSON and grids."""
