"""Keystead adapters: one folder per application.

Each is discovered through the ``keystead.adapters`` entry points.
"""
