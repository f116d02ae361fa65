"""Normalizing-flow tests: layers, networks, bits/dim, module, configs and DDP."""
