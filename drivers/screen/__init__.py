"""Traveller guidance screen: driver interface, line protocol and settings."""
