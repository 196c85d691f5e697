"""e-Gate controller: the per-gate process, its config, audit trail and CLI."""
__version__ = "0.1.0"
