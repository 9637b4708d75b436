"""Keystead messaging adapter."""
