"""edxml-gateway: the interconnection gateway of a Vietnamese government agency.

Layers, lowest first: :mod:`gateway.edxml` (the format, sans-IO), then the axis client,
the daemon and the axis mock, and :mod:`gateway.cli` on top.
"""

__version__ = "0.1.0"
