"""Helpers shared by the tests (configs, trainers, flows, signals); conftest.py keeps only fixtures."""
