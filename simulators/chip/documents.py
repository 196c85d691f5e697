"""The chip of a personalised test document (`simulators.testpki.Document`) as an applet, with the
private keys the document's chip holds: Active Authentication (DG15), Chip Authentication (DG14)
and PACE-CAM (EF.CardSecurity). A cloned chip (`testpki.clone_chip`) holds other keys, so it fails
them while passive authentication passes."""
from __future__ import annotations

from cryptography.hazmat.primitives import serialization

from drivers.emrtd.bac import BacKey
from icao9303 import mrz as mrzmod
from icao9303 import secinfo
from simulators.chip.applet import ChipProfile, EmrtdApplet
from simulators.chip.card_auth import AaSigner


def _key(pem: bytes | None):
    import warnings
    with warnings.catch_warnings():  # cryptography deprecates FFDH; DH chip-authentication keys exist
        warnings.simplefilter("ignore")
        return serialization.load_pem_private_key(pem, None) if pem else None


def chip_keys(doc) -> dict:
    """`EmrtdApplet` keyword arguments for the document's chip keys (aa, cam_key, ca_key)."""
    aa_key = _key(doc.aa_private_key)
    aa = None
    if aa_key is not None:
        hash_name = doc.aa_hash
        if hasattr(aa_key, "curve") and "DG14" in doc.files:
            info = secinfo.parse_dg14(doc.files["DG14"]).active_auth
            hash_name = info.hash_name if info and info.hash_name else hash_name
        aa = AaSigner(aa_key, hash_name, two_byte_trailer=True)
    return {"aa": aa, "cam_key": _key(doc.cam_private_key), "ca_key": _key(doc.ca_private_key)}


def applet_for(doc, profile: ChipProfile | None = None, **kw) -> EmrtdApplet:
    """The document's chip, keyed by its printed MRZ, with its keys."""
    return EmrtdApplet(doc.files, BacKey.from_mrz(mrzmod.parse(doc.mrz_lines)), profile, **chip_keys(doc), **kw)
