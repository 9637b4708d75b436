"""Keystead passwords adapter."""
