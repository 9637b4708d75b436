"""Keystead."""
