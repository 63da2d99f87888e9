"""Guided demonstrations run by `bastion demo`."""
