"""Fingerprint: NBIS minutiae, ISO/IEC 19794-2 templates, NFIQ 2 quality gate, bozorth3 matching."""
