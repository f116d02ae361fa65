"""Losses and likelihoods as pure functions and observation models, grouped by the family that uses them."""
