"""ICAO 9303 travel documents: MRZ, BER-TLV, LDS, SOD/CMS, passive authentication, trust store."""
