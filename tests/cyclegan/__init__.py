"""CycleGAN tests: networks, losses, image pool, training steps and an end-to-end run."""
