"""Fingerprint scanner: sans-IO packet protocol (`protocol`) and the serial driver (`driver`)."""
