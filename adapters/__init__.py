"""Keystead adapters: one folder per application, discovered through the keystead.adapters entry points."""
