"""blindmatch: privacy-preserving record matching over an OPRF-based PSI (RFC 9497)."""

__version__ = "0.1.0"
PROTOCOL_VERSION = 1
