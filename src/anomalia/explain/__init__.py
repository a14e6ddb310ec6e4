"""Attributions for any detector: its own decomposition where it has one, occlusion otherwise."""

from .occlusion import explain, occlusion

__all__ = ["explain", "occlusion"]
