"""Bildungslotse: a multilingual guide to education offers for newcomers in Kassel."""

__version__ = "0.1.0"
