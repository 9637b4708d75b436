"""Keystead ssh adapter."""
