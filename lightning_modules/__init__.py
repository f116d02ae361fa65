"""The LightningModules of every family (gan, cyclegan, vae, autoencoder, flow) and the layers they build on."""
