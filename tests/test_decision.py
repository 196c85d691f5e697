"""Document and eligibility decisions from real passive-authentication results."""
import datetime as dt

import pytest

from core.reasons import Reason
from gate.config import Eligibility
from gate.decision import age_on, document_verdict
from icao9303 import mrz, pa, trust
from simulators.testpki import TestPki, synth_face_jpeg

TODAY = dt.date(2026, 11, 26)


def td3(nationality="TWN", birth="900101", expiry="340415", number="300000001"):
    return mrz.compose_td3(issuer=nationality, surname="LIN", given_names="MEI", document_number=number,
                           nationality=nationality, birth_date=birth, sex="F", expiry_date=expiry)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return TestPki.create(tmp_path_factory.mktemp("pki"), country="TWN")


@pytest.fixture(scope="module")
def store(pki):
    return trust.TrustStore.from_dir(pki.trust_dir)


def verdict(pki, store, lines, variant="genuine", direction="departure", policy=Eligibility()):
    doc = pki.personalise(lines, synth_face_jpeg(1), variant=variant)
    result = pa.verify(doc.sod, doc.data_groups, store, mrz=lines)
    return document_verdict(mrz.parse(lines, strict=False), result, policy, direction, TODAY)


def test_genuine_national_is_accepted(pki, store):
    v = verdict(pki, store, td3())
    assert v.accepted and v.reasons == () and v.details["traveller_class"] == "national"
    assert v.guidance == "passage.enter"
    assert v.details["passive_auth"]["sod_signature"] == "passed"


def test_forged_document_names_the_failed_check(pki, store):
    v = verdict(pki, store, td3(), variant="tampered_dg2")
    assert not v.accepted and v.reasons == (Reason.PA_DG2_HASH,) and v.guidance == "document.rejected"
    assert v.reasons[0].value == "PA_FAILED:dg2_hash"  # what the passage record carries


def test_expired_underage_and_foreigner_on_arrival(pki, store):
    assert verdict(pki, store, td3(expiry="240101")).reasons == (Reason.DOC_EXPIRED,)
    assert Reason.AGE_BELOW_MINIMUM in verdict(pki, store, td3(birth="200101")).reasons
    foreign = td3(nationality="TWN")
    assert verdict(pki, store, foreign, direction="arrival").accepted
    usa = Eligibility(nationals=("USA",))
    assert verdict(pki, store, foreign, direction="arrival", policy=usa).reasons == (Reason.FOREIGNER_NOT_SERVED,)
    assert verdict(pki, store, foreign, direction="departure", policy=usa).accepted


def test_unreadable_chip_fails_only_when_passive_auth_is_required():
    lines = mrz.parse(td3(), strict=False)
    assert document_verdict(lines, None, Eligibility(), "departure", TODAY).reasons == (Reason.CHIP_UNREADABLE,)
    lax = Eligibility(require_passive_auth=False)
    assert document_verdict(lines, None, lax, "departure", TODAY).accepted


def test_policy_for_drops_only_what_cannot_be_checked(pki, store):
    assert pa.policy_for(store, optical_mrz=True) == pa.DEFAULT_POLICY
    bare = trust.TrustStore(cscas=list(store.cscas))
    assert "revocation" not in pa.policy_for(bare, optical_mrz=True).required
    assert "dg1_mrz" not in pa.policy_for(store, optical_mrz=False).required


def test_age_counts_birthdays():
    assert age_on(dt.date(2016, 11, 27), TODAY) == 9
    assert age_on(dt.date(2016, 11, 26), TODAY) == 10


def test_gate_refuses_to_start_without_trust_anchors_or_crls(pki, tmp_path):
    from pathlib import Path

    from gate import config
    from gate.app import load_trust
    from core.errors import ConfigError

    example = Path(__file__).parent.parent / "config" / "gate.example.toml"
    with pytest.raises(ConfigError) as err:
        load_trust(config.load_gate(example))
    assert err.value.key == "pki.csca_dir" and err.value.path == str(example)
    only_cscas = tmp_path / "cscas"
    only_cscas.mkdir()
    for cert in pki.trust_dir.glob("*.pem"):
        (only_cscas / cert.name).write_bytes(cert.read_bytes())
    text = example.read_text().replace("[storage]", f'[pki]\ncsca_dir = "{only_cscas}"\n\n[storage]')
    (tmp_path / "gate.toml").write_text(text.replace('data_dir = "../var/gate"', f'data_dir = "{tmp_path}"'))
    with pytest.raises(ConfigError) as err:
        load_trust(config.load_gate(tmp_path / "gate.toml"))
    assert err.value.key == "pki.crl_dir" and "revocation" in err.value.expected


@pytest.mark.parametrize("checks,mode,expected", [
    ({"active_auth": "passed"}, "when_offered", []),
    ({"active_auth": "failed"}, "when_offered", [Reason.CHIP_AUTH_FAILED]),
    ({"active_auth": "passed", "chip_auth": "failed"}, "required", [Reason.CHIP_AUTH_FAILED]),
    ({}, "when_offered", []),
    ({}, "required", [Reason.CHIP_AUTH_NOT_OFFERED]),
    ({"chip_auth": "not_checked"}, "required", [Reason.CHIP_AUTH_NOT_OFFERED]),
    ({"active_auth": "failed"}, "off", []),
])
def test_clone_detection_refuses_a_failed_chip_and_with_required_one_that_proves_nothing(checks, mode, expected):
    from gate.decision import chip_auth_verdict
    assert chip_auth_verdict(checks, mode) == expected
