"""GAN tests: DCGAN networks, adversarial losses, the GAN module's training steps and learning."""
