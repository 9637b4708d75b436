"""Keystead documents adapter."""
