"""Datamodule tests: torchvision, image-folder and unpaired data, splits and loaders."""
