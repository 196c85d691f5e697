"""Travel-document side of passport reading: MRZ, BER-TLV, LDS, passive authentication, trust store."""
