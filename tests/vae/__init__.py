"""VAE and autoencoder tests: networks, likelihoods, bounds, module, grids and end-to-end runs."""
