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


# -- the full eligibility policy -------------------------------------------------------------

def test_document_codes_match_exactly_and_issuing_states_can_be_limited(pki, store):
    lines = td3()
    pd = ["PD" + lines[0][2:], lines[1]]
    parsed = mrz.parse(pd, strict=False)
    assert parsed.doc_type == "PD"
    assert Reason.DOC_TYPE_NOT_ACCEPTED in document_verdict(parsed, None, Eligibility(require_passive_auth=False),
                                                            "departure", TODAY).reasons   # P never accepts PD
    both = Eligibility(document_types=("P", "PD"), require_passive_auth=False)
    assert document_verdict(parsed, None, both, "departure", TODAY).accepted
    only_nld = Eligibility(issuing_states=("NLD",))
    assert verdict(pki, store, td3(), policy=only_nld).reasons == (Reason.ISSUER_NOT_ACCEPTED,)


def test_validity_rules(pki, store):
    soon = (TODAY + dt.timedelta(days=30)).strftime("%y%m%d")
    assert verdict(pki, store, td3(expiry=soon)).accepted
    six_months = Eligibility(min_validity_days=180)
    assert verdict(pki, store, td3(expiry=soon), policy=six_months).reasons == (Reason.DOC_VALIDITY_TOO_SHORT,)
    lapsed = (TODAY - dt.timedelta(days=20)).strftime("%y%m%d")
    grace = Eligibility(expired_grace_days=30)
    assert verdict(pki, store, td3(expiry=lapsed), direction="arrival", policy=grace).accepted   # a national coming home
    assert verdict(pki, store, td3(expiry=lapsed), direction="departure", policy=grace).reasons == (Reason.DOC_EXPIRED,)


def test_categories_per_direction_and_enrolment():
    from gate.decision import category_of

    foreign = mrz.parse(td3(nationality="NLD"), strict=False)
    lax = dict(require_passive_auth=False)
    policy = Eligibility(foreigners_on=("departure",), residents_on=("arrival",), **lax)
    assert category_of("NLD", policy, resident=True) == "resident" and category_of("TWN", policy, True) == "national"
    v = document_verdict(foreign, None, policy, "arrival", TODAY)
    assert v.reasons == (Reason.FOREIGNER_NOT_SERVED,) and v.details["traveller_class"] == "foreigner"
    assert document_verdict(foreign, None, policy, "arrival", TODAY, resident=True).accepted
    assert document_verdict(foreign, None, policy, "departure", TODAY, resident=True).reasons == \
        (Reason.RESIDENT_NOT_SERVED,)
    enrol = Eligibility(enrolment_required=("resident",), **lax)
    assert document_verdict(foreign, None, enrol, "arrival", TODAY, resident=True, enrolled=False).reasons == \
        (Reason.NOT_ENROLLED,)
    assert document_verdict(foreign, None, enrol, "arrival", TODAY, resident=True, enrolled=True).accepted
    assert document_verdict(mrz.parse(td3(), strict=False), None, enrol, "arrival", TODAY, enrolled=False).accepted


def test_minimum_age_comes_from_dg1_once_passive_authentication_passed(pki, store):
    """A printed MRZ altered to an adult's birth date cannot pass: DG1 is what PA vouches for, and
    PA already fails on the difference; with a chip that agrees, the age is DG1's."""
    from icao9303 import lds

    lines = td3(birth="200101")                      # a child
    doc = pki.personalise(lines, synth_face_jpeg(1))
    result = pa.verify(doc.sod, doc.data_groups, store, mrz=lines)
    dg1 = lds.parse_dg1(doc.data_groups[1])
    v = document_verdict(mrz.parse(lines, strict=False), result, Eligibility(), "departure", TODAY, dg1=dg1)
    assert v.reasons == (Reason.AGE_BELOW_MINIMUM,) and v.details["holder_data"] == "dg1"
    adult_print = mrz.parse(td3(birth="900101"), strict=False)
    v = document_verdict(adult_print, result, Eligibility(require_passive_auth=False), "departure", TODAY, dg1=dg1)
    assert v.details["holder_data"] == "dg1" and Reason.AGE_BELOW_MINIMUM in v.reasons


def test_chip_authentication_per_issuing_state(pki, store):
    from gate.config import StateChipAuth
    from gate.decision import chip_auth_mode

    policy = Eligibility(chip_authentication="when_offered",
                         chip_authentication_by_state=(StateChipAuth(states=("TWN",), mode="required"),
                                                       StateChipAuth(states=("UTO",), mode="off")))
    assert chip_auth_mode(policy, "TWN") == "required" and chip_auth_mode(policy, "NLD") == "when_offered"
    assert chip_auth_mode(policy, "UTO") == "off"
    doc = pki.personalise(td3(), synth_face_jpeg(1))
    result = pa.verify(doc.sod, doc.data_groups, store, mrz=td3())
    v = document_verdict(mrz.parse(td3(), strict=False), result, policy, "departure", TODAY, {})
    assert v.reasons == (Reason.CHIP_AUTH_NOT_OFFERED,) and v.details["chip_auth_mode"] == "required"


def test_decider_screens_even_a_refused_document_and_checks_reuse_only_when_otherwise_clear(tmp_path):
    import types

    from gate import config
    from gate.decision import Decider, Services
    from gate.screening import controllist as CL

    example = __import__("pathlib").Path(__file__).parent.parent / "config" / "gate.example.toml"
    base = config.load_gate(example)
    import dataclasses as dc
    cfg = dc.replace(base, eligibility=Eligibility(require_passive_auth=False),
                     screening=dc.replace(base.screening,
                                          control_list=dc.replace(base.screening.control_list, enabled=True),
                                          reuse=dc.replace(base.screening.reuse, window_s=60.0, central=True)))
    listed = CL.ControlList(CL.decode(CL.build([CL.Entry("CL-7", issuer="TWN", number="300000001")], serial=1)))
    cache = types.SimpleNamespace(usable=lambda: listed, snapshot=lambda: {"state": "ok"})
    used = []
    services = Services(control_list=cache, recent_clearance=lambda i, n, w: used.append(n) or 12.0,
                        central_crossing=None)
    d = Decider(cfg, services, today=lambda: TODAY)
    expired = mrz.parse(td3(expiry="240101"), strict=False)
    v = d.decide(expired, None)
    assert v.reasons == (Reason.DOC_EXPIRED, Reason.CONTROL_LIST_HIT) and v.alerts[0][0] == Reason.CONTROL_LIST_HIT
    assert "CL-7" in v.alerts[0][1] and used == []            # refused anyway: no reuse question asked
    clean = mrz.parse(td3(number="300000002"), strict=False)
    v = d.decide(clean, None)
    assert v.reasons == (Reason.DOC_ALREADY_USED,) and v.details["reuse"]["central"] == "skipped: no central link"
    d.s.recent_clearance = lambda i, n, w: None
    d.s.central_crossing = lambda i, n, direction, t: {"checked": "central", "open": True, "last": {"direction": direction}}
    assert d.decide(clean, None).reasons == (Reason.OPEN_CROSSING,)
    d.s.control_list = types.SimpleNamespace(usable=lambda: None, snapshot=lambda: {"state": "stale"})
    assert Reason.CONTROL_LIST_UNAVAILABLE in d.decide(clean, None).reasons   # nobody passes unscreened
