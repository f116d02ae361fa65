"""Pure nn.Modules per family: DCGAN, CycleGAN ResNet/PatchGAN, VAE encoders/decoders, RealNVP/Glow flows."""
