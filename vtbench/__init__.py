"""vtbench: a workbench for joint video-text representations learned from weakly aligned data."""
__version__ = "0.1.0"
