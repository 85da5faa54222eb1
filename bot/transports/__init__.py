"""Thin adapters between platforms and the engine."""
