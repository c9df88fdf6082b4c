"""Reading user media files (images) into plain arrays, with clear errors for what cannot be read."""

from .images import ImageReadError, LoadedImage, read_image

__all__ = ["ImageReadError", "LoadedImage", "read_image"]
