"""Pieces of the training loop shared by families: EMA, seeded noise, schedules, image pool, checks, optimizers."""
