"""The base layer every other package may import: user errors and atomic file writing (no project imports)."""
