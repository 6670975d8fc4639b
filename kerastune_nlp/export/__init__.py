"""Compression and export of trained run directories."""
