"""edgeav: recommend sound effects for video from self-supervised audio-visual models.

The runtime (this package) never imports `edgeav_train` (training) at module level.
"""

from edgeav.errors import EdgeavError

__version__ = "0.1.0"
__all__ = ["EdgeavError", "__version__"]
