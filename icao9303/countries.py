"""Issuing-state and nationality codes used in MRZs (ICAO 9303 Part 3, section 5).

`ALPHA3_TO_ALPHA2` maps the three-letter MRZ code to the ISO 3166-1 alpha-2 code that a
document-signer certificate carries in its subject `C` attribute.  ICAO's special codes map
to what their certificates use where one exists (``D`` → ``DE``, ``GBD`` … ``GBS`` → ``GB``,
the specimen state ``UTO`` → ``UT``); codes with no country (UN, refugees, stateless
persons) map to ``None``.
"""
from __future__ import annotations

_ISO3166 = """
AFG AF ALA AX ALB AL DZA DZ ASM AS AND AD AGO AO AIA AI ATA AQ ATG AG ARG AR ARM AM ABW AW
AUS AU AUT AT AZE AZ BHS BS BHR BH BGD BD BRB BB BLR BY BEL BE BLZ BZ BEN BJ BMU BM BTN BT
BOL BO BES BQ BIH BA BWA BW BVT BV BRA BR IOT IO BRN BN BGR BG BFA BF BDI BI CPV CV KHM KH
CMR CM CAN CA CYM KY CAF CF TCD TD CHL CL CHN CN CXR CX CCK CC COL CO COM KM COG CG COD CD
COK CK CRI CR CIV CI HRV HR CUB CU CUW CW CYP CY CZE CZ DNK DK DJI DJ DMA DM DOM DO ECU EC
EGY EG SLV SV GNQ GQ ERI ER EST EE SWZ SZ ETH ET FLK FK FRO FO FJI FJ FIN FI FRA FR GUF GF
PYF PF ATF TF GAB GA GMB GM GEO GE DEU DE GHA GH GIB GI GRC GR GRL GL GRD GD GLP GP GUM GU
GTM GT GGY GG GIN GN GNB GW GUY GY HTI HT HMD HM VAT VA HND HN HKG HK HUN HU ISL IS IND IN
IDN ID IRN IR IRQ IQ IRL IE IMN IM ISR IL ITA IT JAM JM JPN JP JEY JE JOR JO KAZ KZ KEN KE
KIR KI PRK KP KOR KR KWT KW KGZ KG LAO LA LVA LV LBN LB LSO LS LBR LR LBY LY LIE LI LTU LT
LUX LU MAC MO MDG MG MWI MW MYS MY MDV MV MLI ML MLT MT MHL MH MTQ MQ MRT MR MUS MU MYT YT
MEX MX FSM FM MDA MD MCO MC MNG MN MNE ME MSR MS MAR MA MOZ MZ MMR MM NAM NA NRU NR NPL NP
NLD NL NCL NC NZL NZ NIC NI NER NE NGA NG NIU NU NFK NF MKD MK MNP MP NOR NO OMN OM PAK PK
PLW PW PSE PS PAN PA PNG PG PRY PY PER PE PHL PH PCN PN POL PL PRT PT PRI PR QAT QA REU RE
ROU RO RUS RU RWA RW BLM BL SHN SH KNA KN LCA LC MAF MF SPM PM VCT VC WSM WS SMR SM STP ST
SAU SA SEN SN SRB RS SYC SC SLE SL SGP SG SXM SX SVK SK SVN SI SLB SB SOM SO ZAF ZA SGS GS
SSD SS ESP ES LKA LK SDN SD SUR SR SJM SJ SWE SE CHE CH SYR SY TWN TW TJK TJ TZA TZ THA TH
TLS TL TGO TG TKL TK TON TO TTO TT TUN TN TUR TR TKM TM TCA TC TUV TV UGA UG UKR UA ARE AE
GBR GB USA US UMI UM URY UY UZB UZ VUT VU VEN VE VNM VN VGB VG VIR VI WLF WF ESH EH YEM YE
ZMB ZM ZWE ZW
"""

#: ICAO 9303 Part 3 special codes (issuer or nationality) → certificate country (or None).
SPECIAL_CODES: dict[str, tuple[str | None, str]] = {
    "D": ("DE", "Germany"),
    "UTO": ("UT", "Utopia (specimen documents)"),
    "GBD": ("GB", "British Overseas Territories Citizen"),
    "GBN": ("GB", "British National (Overseas)"),
    "GBO": ("GB", "British Overseas Citizen"),
    "GBP": ("GB", "British Protected Person"),
    "GBS": ("GB", "British Subject"),
    "XXA": (None, "Stateless person (1954 Convention)"),
    "XXB": (None, "Refugee (1951 Convention)"),
    "XXC": (None, "Refugee (other than under the 1951 Convention)"),
    "XXX": (None, "Person of unspecified nationality"),
    "UNO": (None, "United Nations Organization or one of its officials"),
    "UNA": (None, "Specialized agency of the United Nations or one of its officials"),
    "UNK": (None, "Resident of Kosovo (UNMIK travel document)"),
    "EUE": ("EU", "European Union"),
    "XOM": (None, "Sovereign Military Order of Malta"),
    "XPO": (None, "INTERPOL"),
    "XBA": (None, "African Development Bank"),
    "XIM": (None, "African Export-Import Bank"),
    "XCC": (None, "Caribbean Community (CARICOM)"),
    "XCE": (None, "Council of Europe"),
    "XCO": (None, "Common Market for Eastern and Southern Africa"),
    "XEC": (None, "Economic Community of West African States"),
    "XES": (None, "Organisation of Eastern Caribbean States"),
    "XMP": (None, "International Criminal Police Organization"),
    "XDC": (None, "Southern African Development Community"),
    "RKS": ("XK", "Kosovo"),
}

ALPHA3_TO_ALPHA2: dict[str, str | None] = {}
_t = _ISO3166.split()
for _i in range(0, len(_t), 2):
    ALPHA3_TO_ALPHA2[_t[_i]] = _t[_i + 1]
for _code, (_a2, _name) in SPECIAL_CODES.items():
    ALPHA3_TO_ALPHA2[_code] = _a2
del _t, _i, _code, _a2, _name


def is_known(code: str) -> bool:
    """True if `code` (filler removed) is an ISO 3166-1 alpha-3 code or an ICAO special code."""
    return code in ALPHA3_TO_ALPHA2


def alpha2(code: str) -> str | None:
    """Certificate country for an MRZ code, or None when there is none or the code is unknown."""
    return ALPHA3_TO_ALPHA2.get(code)


def special_meaning(code: str) -> str | None:
    """Human-readable meaning of an ICAO special code, None for ordinary country codes."""
    entry = SPECIAL_CODES.get(code)
    return entry[1] if entry else None
