"""The gate application: the per-gate process (app, passage machine, controller, steps, decisions),
its configuration and its CLI."""
__version__ = "0.1.0"
