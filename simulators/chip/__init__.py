"""eMRTD chip simulator: the applet (sans-IO) and its vpcd connection (a virtual card in pcscd)."""
