"""LightningDataModules: torchvision datasets, image folders, unpaired two-domain data (base.py: base, loaders)."""
