"""edgessl: self-supervised, budgeted architecture search for edge image backbones."""

__version__ = "0.1.0"
