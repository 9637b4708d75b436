"""Keystead second_factor adapter."""
