"""Domain parameters of PACE and chip authentication, and the group arithmetic they need.

ICAO 9303-11 §9.5.1 standardized domain parameters, by parameter id: 0-2 the RFC 5114 MODP
groups (DH), 8-18 the NIST and Brainpool curves (ECDH), brainpoolP320r1 (14) included, which
`cryptography` does not offer. The values were exported from OpenSSL 3
(`openssl ecparam -param_enc explicit`, `openssl genpkey -genparam -pkeyopt dh_rfc5114:N`);
tests/test_pace.py checks every curve (G on the curve, n*G at infinity) and compares the
shared curves with `icao9303.eckeys`.

PACE's Generic and Integrated Mapping compute on a generator other than the standard one, so
the arithmetic is ours: affine points as (x, y) tuples (None is the point at infinity), Jacobian
coordinates inside scalar multiplication. This is variable-time Python; on the terminal every
secret scalar is ephemeral (one PACE run), on the simulated chip nothing is secret.

Both kinds of group share one interface (`Group`): `generator`, `mul(k, P)`, `add(P, Q)`,
`encode(P)`, `decode(data)` (validated), `shared_secret(P)` (x coordinate or the DH value, fixed
length), `random_scalar()`.

Fast path: on NIST P-256, P-384 and P-521 (where OpenSSL's optimised code runs), k·P for any point
P (a mapped generator included) is taken from two OpenSSL ECDH exchanges: x(k·P) and x((k+1)·P);
y is the square root (p ≡ 3 mod 4) whose sign makes (x, y) + P land on x((k+1)·P). 3-5 times
faster than the Python ladder, which stays the fallback (brainpool curves, where OpenSSL's generic
code is no faster; edge cases) and the reference the tests compare it with.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from drivers.emrtd.apdu import ChipError


class GroupError(ChipError):
    """A public value that is not a valid element of the group (off the curve, out of range, identity)."""


Point = tuple[int, int] | None


@dataclass(frozen=True)
class Curve:
    """A short Weierstrass curve y^2 = x^3 + ax + b over GF(p) with base point (gx, gy) of order n."""

    name: str
    oid: str
    p: int
    a: int
    b: int
    gx: int
    gy: int
    n: int
    h: int
    kind: str = field(default="ECDH", init=False)

    @property
    def size(self) -> int:
        """Bytes of one field element (coordinates are left-padded to this)."""
        return (self.p.bit_length() + 7) // 8

    @property
    def order_size(self) -> int:
        return (self.n.bit_length() + 7) // 8

    @property
    def generator(self) -> Point:
        return (self.gx, self.gy)

    def contains(self, pt: Point) -> bool:
        if pt is None:
            return False
        x, y = pt
        p = self.p
        return 0 <= x < p and 0 <= y < p and (y * y - (x * x * x + self.a * x + self.b)) % p == 0

    # ----------------------------------------------------------- arithmetic
    def add(self, p1: Point, p2: Point) -> Point:
        if p1 is None:
            return p2
        if p2 is None:
            return p1
        p = self.p
        (x1, y1), (x2, y2) = p1, p2
        if x1 == x2:
            if (y1 + y2) % p == 0:
                return None
            lam = (3 * x1 * x1 + self.a) * pow(2 * y1, -1, p) % p
        else:
            lam = (y2 - y1) * pow(x2 - x1, -1, p) % p
        x3 = (lam * lam - x1 - x2) % p
        return (x3, (lam * (x1 - x3) - y1) % p)

    def negate(self, pt: Point) -> Point:
        return None if pt is None else (pt[0], (-pt[1]) % self.p)

    def mul(self, k: int, pt: Point) -> Point:
        """k * pt (k reduced mod n; 0 gives the point at infinity)."""
        k %= self.n
        if k == 0 or pt is None:
            return None
        fast = self._mul_openssl(k, pt)
        return fast if fast is not None else self.mul_ladder(k, pt)

    def _mul_openssl(self, k: int, pt: Point) -> Point:
        """k·pt from OpenSSL's ECDH (x of k·pt and of (k+1)·pt), or None to use the ladder."""
        make = _openssl_curve(self.name)
        p = self.p
        if make is None or p % 4 != 3 or k >= self.n - 1:
            return None
        try:
            from cryptography.hazmat.primitives.asymmetric import ec
            curve = make()
            peer = ec.EllipticCurvePublicNumbers(pt[0], pt[1], curve).public_key()
            x1 = int.from_bytes(ec.derive_private_key(k, curve).exchange(ec.ECDH(), peer), "big")
            x2 = int.from_bytes(ec.derive_private_key(k + 1, curve).exchange(ec.ECDH(), peer), "big")
        except (ValueError, TypeError):
            return None
        rhs = (x1 * x1 * x1 + self.a * x1 + self.b) % p
        y = pow(rhs, (p + 1) // 4, p)
        if y * y % p != rhs:
            return None
        found = [c for c in ((x1, y), (x1, p - y)) if (self.add(c, pt) or (None,))[0] == x2]
        return found[0] if len(found) == 1 else None

    def mul_ladder(self, k: int, pt: Point) -> Point:
        """k * pt by double-and-add in Python (any curve)."""
        k %= self.n
        if k == 0 or pt is None:
            return None
        p, a = self.p, self.a
        px, py = pt
        # left-to-right double-and-add in Jacobian coordinates (X, Y, Z) = (x Z^2, y Z^3)
        X, Y, Z = px, py, 1
        for bit in bin(k)[3:]:
            if Y == 0:
                X, Y, Z = 1, 1, 0
            elif Z:
                YY = Y * Y % p
                S = 4 * X * YY % p
                ZZ = Z * Z % p
                M = (3 * X * X + a * ZZ * ZZ) % p
                X3 = (M * M - 2 * S) % p
                Y, Z = (M * (S - X3) - 8 * YY * YY) % p, 2 * Y * Z % p
                X = X3
            if bit == "1":
                if Z == 0:
                    X, Y, Z = px, py, 1
                    continue
                ZZ = Z * Z % p
                U2 = px * ZZ % p
                S2 = py * ZZ * Z % p
                H = (U2 - X) % p
                R = (S2 - Y) % p
                if H == 0:  # the accumulator equals +-pt: leave Jacobian coordinates for this step
                    twice = self.add(pt, pt) if R == 0 else None
                    X, Y, Z = (twice[0], twice[1], 1) if twice else (1, 1, 0)
                    continue
                HH = H * H % p
                HHH = H * HH % p
                V = X * HH % p
                X3 = (R * R - HHH - 2 * V) % p
                Y = (R * (V - X3) - Y * HHH) % p
                Z = Z * H % p
                X = X3
        if Z == 0:
            return None
        return self._affine(X, Y, Z)

    def _affine(self, X: int, Y: int, Z: int) -> tuple[int, int]:
        p = self.p
        zi = pow(Z, -1, p)
        zi2 = zi * zi % p
        return (X * zi2 % p, Y * zi2 * zi % p)

    def random_scalar(self) -> int:
        return 1 + secrets.randbelow(self.n - 1)

    # ------------------------------------------------------------ encodings
    def encode(self, pt: Point) -> bytes:
        """Uncompressed point 04 || x || y, coordinates of `size` bytes (ICAO 9303-11 / BSI TR-03111)."""
        if pt is None:
            raise GroupError("the point at infinity has no encoding")
        return b"\x04" + pt[0].to_bytes(self.size, "big") + pt[1].to_bytes(self.size, "big")

    def decode(self, data: bytes) -> Point:
        """An uncompressed point, checked to lie on the curve (and not be the identity)."""
        if len(data) != 1 + 2 * self.size or data[0] != 0x04:
            raise GroupError(f"{self.name}: expected an uncompressed point of {1 + 2 * self.size} bytes, "
                             f"got {len(data)} bytes starting {data[:1].hex() or 'nothing'}")
        pt = (int.from_bytes(data[1:1 + self.size], "big"), int.from_bytes(data[1 + self.size:], "big"))
        if not self.contains(pt):
            raise GroupError(f"{self.name}: point is not on the curve")
        return pt

    def shared_secret(self, pt: Point) -> bytes:
        """The x coordinate, left-padded to the field size (ICAO 9303-11 §9.7.1, pitfall: fixed length)."""
        if pt is None:
            raise GroupError(f"{self.name}: shared secret is the point at infinity")
        return pt[0].to_bytes(self.size, "big")


def _openssl_curve(name: str):
    """The `cryptography` curve class of this name, if OpenSSL has it (cached)."""
    if name not in _OPENSSL_CURVES:
        from cryptography.hazmat.primitives.asymmetric import ec
        # only where OpenSSL's optimised code wins: its generic code (brainpool, P-192) is no faster
        # than the ladder once the two exchanges and the key derivation are counted
        make = {"secp256r1": ec.SECP256R1, "secp384r1": ec.SECP384R1, "secp521r1": ec.SECP521R1}.get(name)
        if make is not None:
            try:
                k = ec.derive_private_key(2, make())
                k.exchange(ec.ECDH(), k.public_key())
            except Exception:  # noqa: BLE001 (an OpenSSL build without this curve)
                make = None
        _OPENSSL_CURVES[name] = make
    return _OPENSSL_CURVES[name]


_OPENSSL_CURVES: dict = {}


@dataclass(frozen=True)
class DhGroup:
    """A prime-order subgroup of GF(p)* (RFC 5114): generator g of order q."""

    name: str
    p: int
    g: int
    q: int
    kind: str = field(default="DH", init=False)

    @property
    def size(self) -> int:
        return (self.p.bit_length() + 7) // 8

    @property
    def n(self) -> int:
        return self.q

    @property
    def generator(self) -> int:
        return self.g

    def contains(self, y) -> bool:
        return isinstance(y, int) and 1 < y < self.p - 1 and pow(y, self.q, self.p) == 1

    def add(self, a: int, b: int) -> int:
        """The group operation (written additively to match the curves): a * b mod p."""
        return a * b % self.p

    def mul(self, k: int, y: int) -> int:
        return pow(y, k % self.q, self.p)

    def random_scalar(self) -> int:
        return 1 + secrets.randbelow(self.q - 1)

    def encode(self, y: int) -> bytes:
        """Big-endian, left-padded to the size of p (pitfall: never trimmed)."""
        return y.to_bytes(self.size, "big")

    def decode(self, data: bytes) -> int:
        if len(data) != self.size:
            raise GroupError(f"DH {self.name}: expected {self.size} bytes, got {len(data)}")
        y = int.from_bytes(data, "big")
        if not self.contains(y):
            raise GroupError(f"DH {self.name}: public value is not in the subgroup of order q")
        return y

    def shared_secret(self, y: int) -> bytes:
        if not 1 < y < self.p - 1:
            raise GroupError(f"DH {self.name}: degenerate shared secret")
        return y.to_bytes(self.size, "big")


Group = Curve | DhGroup

#: ICAO 9303-11 Table 4 standardized domain parameters, by parameter id
STANDARD: dict[int, Group] = {
    0: DhGroup('1024/160',
        int("B10B8F96A080E01DDE92DE5EAE5D54EC52C99FBCFB06A3C69A6A9DCA52D23B616073E28675A23D189838EF1E2EE652C0"
            "13ECB4AEA906112324975C3CD49B83BFACCBDD7D90C4BD7098488E9C219A73724EFFD6FAE5644738FAA31A4FF55BCCC0"
            "A151AF5F0DC8B4BD45BF37DF365C1A65E68CFDA76D4DA708DF1FB2BC2E4A4371", 16),
        int("A4D1CBD5C3FD34126765A442EFB99905F8104DD258AC507FD6406CFF14266D31266FEA1E5C41564B777E690F5504F213"
            "160217B4B01B886A5E91547F9E2749F4D7FBD7D3B9A92EE1909D0D2263F80A76A6A24C087A091F531DBF0A0169B6A28A"
            "D662A4D18E73AFA32D779D5918D08BC8858F4DCEF97C2A24855E6EEB22B3B2E5", 16),
        0xF518AA8781A8DF278ABA4E7D64B7CB9D49462353,
    ),
    1: DhGroup('2048/224',
        int("AD107E1E9123A9D0D660FAA79559C51FA20D64E5683B9FD1B54B1597B61D0A75E6FA141DF95A56DBAF9A3C407BA1DF15"
            "EB3D688A309C180E1DE6B85A1274A0A66D3F8152AD6AC2129037C9EDEFDA4DF8D91E8FEF55B7394B7AD5B7D0B6C12207"
            "C9F98D11ED34DBF6C6BA0B2C8BBC27BE6A00E0A0B9C49708B3BF8A317091883681286130BC8985DB1602E714415D9330"
            "278273C7DE31EFDC7310F7121FD5A07415987D9ADC0A486DCDF93ACC44328387315D75E198C641A480CD86A1B9E587E8"
            "BE60E69CC928B2B9C52172E413042E9B23F10B0E16E79763C9B53DCF4BA80A29E3FB73C16B8E75B97EF363E2FFA31F71"
            "CF9DE5384E71B81C0AC4DFFE0C10E64F", 16),
        int("AC4032EF4F2D9AE39DF30B5C8FFDAC506CDEBE7B89998CAF74866A08CFE4FFE3A6824A4E10B9A6F0DD921F01A70C4AFA"
            "AB739D7700C29F52C57DB17C620A8652BE5E9001A8D66AD7C17669101999024AF4D027275AC1348BB8A762D0521BC98A"
            "E247150422EA1ED409939D54DA7460CDB5F6C6B250717CBEF180EB34118E98D119529A45D6F834566E3025E316A330EF"
            "BB77A86F0C1AB15B051AE3D428C8F8ACB70A8137150B8EEB10E183EDD19963DDD9E263E4770589EF6AA21E7F5F2FF381"
            "B539CCE3409D13CD566AFBB48D6C019181E1BCFE94B30269EDFE72FE9B6AA4BD7B5A0F1C71CFFF4C19C418E1F6EC0179"
            "81BC087F2A7065B384B890D3191F2BFA", 16),
        0x801C0D34C58D93FE997177101F80535A4738CEBCBF389A99B36371EB,
    ),
    2: DhGroup('2048/256',
        int("87A8E61DB4B6663CFFBBD19C651959998CEEF608660DD0F25D2CEED4435E3B00E00DF8F1D61957D4FAF7DF4561B2AA30"
            "16C3D91134096FAA3BF4296D830E9A7C209E0C6497517ABD5A8A9D306BCF67ED91F9E6725B4758C022E0B1EF4275BF7B"
            "6C5BFC11D45F9088B941F54EB1E59BB8BC39A0BF12307F5C4FDB70C581B23F76B63ACAE1CAA6B7902D52526735488A0E"
            "F13C6D9A51BFA4AB3AD8347796524D8EF6A167B5A41825D967E144E5140564251CCACB83E6B486F6B3CA3F7971506026"
            "C0B857F689962856DED4010ABD0BE621C3A3960A54E710C375F26375D7014103A4B54330C198AF126116D2276E11715F"
            "693877FAD7EF09CADB094AE91E1A1597", 16),
        int("3FB32C9B73134D0B2E77506660EDBD484CA7B18F21EF205407F4793A1A0BA12510DBC15077BE463FFF4FED4AAC0BB555"
            "BE3A6C1B0C6B47B1BC3773BF7E8C6F62901228F8C28CBB18A55AE31341000A650196F931C77A57F2DDF463E5E9EC144B"
            "777DE62AAAB8A8628AC376D282D6ED3864E67982428EBC831D14348F6F2F9193B5045AF2767164E1DFC967C1FB3F2E55"
            "A4BD1BFFE83B9C80D052B985D182EA0ADB2A3B7313D3FE14C8484B1E052588B9B7D2BBD2DF016199ECD06E1557CD0915"
            "B3353BBB64E0EC377FD028370DF92B52C7891428CDC67EB6184B523D1DB246C32F63078490F00EF8D647D148D4795451"
            "5E2327CFEF98C582664B4C0F6CC41659", 16),
        0x8CF83642A709A097B447997640129DA299B1A47D1EB3750BA308B0FE64F5FBD3,
    ),
    8: Curve('secp192r1', '1.2.840.10045.3.1.1',
        0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFFFFFFFFFFFFF,
        0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFFFFFFFFFFFFC,
        0x64210519E59C80E70FA7E9AB72243049FEB8DEECC146B9B1,
        0x188DA80EB03090F67CBF20EB43A18800F4FF0AFD82FF1012,
        0x7192B95FFC8DA78631011ED6B24CDD573F977A11E794811,
        0xFFFFFFFFFFFFFFFFFFFFFFFF99DEF836146BC9B1B4D22831,
        1),
    9: Curve('brainpoolP192r1', '1.3.36.3.3.2.8.1.1.3',
        0xC302F41D932A36CDA7A3463093D18DB78FCE476DE1A86297,
        0x6A91174076B1E0E19C39C031FE8685C1CAE040E5C69A28EF,
        0x469A28EF7C28CCA3DC721D044F4496BCCA7EF4146FBF25C9,
        0xC0A0647EAAB6A48753B033C56CB0F0900A2F5C4853375FD6,
        0x14B690866ABD5BB88B5F4828C1490002E6773FA2FA299B8F,
        0xC302F41D932A36CDA7A3462F9E9E916B5BE8F1029AC4ACC1,
        1),
    10: Curve('secp224r1', '1.3.132.0.33',
        0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF000000000000000000000001,
        0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFE,
        0xB4050A850C04B3ABF54132565044B0B7D7BFD8BA270B39432355FFB4,
        0xB70E0CBD6BB4BF7F321390B94A03C1D356C21122343280D6115C1D21,
        0xBD376388B5F723FB4C22DFE6CD4375A05A07476444D5819985007E34,
        0xFFFFFFFFFFFFFFFFFFFFFFFFFFFF16A2E0B8F03E13DD29455C5C2A3D,
        1),
    11: Curve('brainpoolP224r1', '1.3.36.3.3.2.8.1.1.5',
        0xD7C134AA264366862A18302575D1D787B09F075797DA89F57EC8C0FF,
        0x68A5E62CA9CE6C1C299803A6C1530B514E182AD8B0042A59CAD29F43,
        0x2580F63CCFE44138870713B1A92369E33E2135D266DBB372386C400B,
        0xD9029AD2C7E5CF4340823B2A87DC68C9E4CE3174C1E6EFDEE12C07D,
        0x58AA56F772C0726F24C6B89E4ECDAC24354B9E99CAA3F6D3761402CD,
        0xD7C134AA264366862A18302575D0FB98D116BC4B6DDEBCA3A5A7939F,
        1),
    12: Curve('secp256r1', '1.2.840.10045.3.1.7',
        0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF,
        0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFC,
        0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B,
        0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296,
        0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5,
        0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
        1),
    13: Curve('brainpoolP256r1', '1.3.36.3.3.2.8.1.1.7',
        0xA9FB57DBA1EEA9BC3E660A909D838D726E3BF623D52620282013481D1F6E5377,
        0x7D5A0975FC2C3057EEF67530417AFFE7FB8055C126DC5C6CE94A4B44F330B5D9,
        0x26DC5C6CE94A4B44F330B5D9BBD77CBF958416295CF7E1CE6BCCDC18FF8C07B6,
        0x8BD2AEB9CB7E57CB2C4B482FFC81B7AFB9DE27E1E3BD23C23A4453BD9ACE3262,
        0x547EF835C3DAC4FD97F8461A14611DC9C27745132DED8E545C1D54C72F046997,
        0xA9FB57DBA1EEA9BC3E660A909D838D718C397AA3B561A6F7901E0E82974856A7,
        1),
    14: Curve('brainpoolP320r1', '1.3.36.3.3.2.8.1.1.9',
        0xD35E472036BC4FB7E13C785ED201E065F98FCFA6F6F40DEF4F92B9EC7893EC28FCD412B1F1B32E27,
        0x3EE30B568FBAB0F883CCEBD46D3F3BB8A2A73513F5EB79DA66190EB085FFA9F492F375A97D860EB4,
        0x520883949DFDBC42D3AD198640688A6FE13F41349554B49ACC31DCCD884539816F5EB4AC8FB1F1A6,
        0x43BD7E9AFB53D8B85289BCC48EE5BFE6F20137D10A087EB6E7871E2A10A599C710AF8D0D39E20611,
        0x14FDD05545EC1CC8AB4093247F77275E0743FFED117182EAA9C77877AAAC6AC7D35245D1692E8EE1,
        0xD35E472036BC4FB7E13C785ED201E065F98FCFA5B68F12A32D482EC7EE8658E98691555B44C59311,
        1),
    15: Curve('secp384r1', '1.3.132.0.34',
        0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFFFFF0000000000000000FFFFFFFF,
        0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFFFFF0000000000000000FFFFFFFC,
        0xB3312FA7E23EE7E4988E056BE3F82D19181D9C6EFE8141120314088F5013875AC656398D8A2ED19D2A85C8EDD3EC2AEF,
        0xAA87CA22BE8B05378EB1C71EF320AD746E1D3B628BA79B9859F741E082542A385502F25DBF55296C3A545E3872760AB7,
        0x3617DE4A96262C6F5D9E98BF9292DC29F8F41DBD289A147CE9DA3113B5F0B8C00A60B1CE1D7E819D7A431D7C90EA0E5F,
        0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973,
        1),
    16: Curve('brainpoolP384r1', '1.3.36.3.3.2.8.1.1.11',
        0x8CB91E82A3386D280F5D6F7E50E641DF152F7109ED5456B412B1DA197FB71123ACD3A729901D1A71874700133107EC53,
        0x7BC382C63D8C150C3C72080ACE05AFA0C2BEA28E4FB22787139165EFBA91F90F8AA5814A503AD4EB04A8C7DD22CE2826,
        0x4A8C7DD22CE28268B39B55416F0447C2FB77DE107DCD2A62E880EA53EEB62D57CB4390295DBC9943AB78696FA504C11,
        0x1D1C64F068CF45FFA2A63A81B7C13F6B8847A3E77EF14FE3DB7FCAFE0CBD10E8E826E03436D646AAEF87B2E247D4AF1E,
        0x8ABE1D7520F9C2A45CB1EB8E95CFD55262B70B29FEEC5864E19C054FF99129280E4646217791811142820341263C5315,
        0x8CB91E82A3386D280F5D6F7E50E641DF152F7109ED5456B31F166E6CAC0425A7CF3AB6AF6B7FC3103B883202E9046565,
        1),
    17: Curve('brainpoolP512r1', '1.3.36.3.3.2.8.1.1.13',
        int("AADD9DB8DBE9C48B3FD4E6AE33C9FC07CB308DB3B3C9D20ED6639CCA703308717D4D9B009BC66842AECDA12AE6A380E6"
            "2881FF2F2D82C68528AA6056583A48F3", 16),
        int("7830A3318B603B89E2327145AC234CC594CBDD8D3DF91610A83441CAEA9863BC2DED5D5AA8253AA10A2EF1C98B9AC8B5"
            "7F1117A72BF2C7B9E7C1AC4D77FC94CA", 16),
        int("3DF91610A83441CAEA9863BC2DED5D5AA8253AA10A2EF1C98B9AC8B57F1117A72BF2C7B9E7C1AC4D77FC94CADC083E67"
            "984050B75EBAE5DD2809BD638016F723", 16),
        int("81AEE4BDD82ED9645A21322E9C4C6A9385ED9F70B5D916C1B43B62EEF4D0098EFF3B1F78E2D0D48D50D1687B93B97D5F"
            "7C6D5047406A5E688B352209BCB9F822", 16),
        int("7DDE385D566332ECC0EABFA9CF7822FDF209F70024A57B1AA000C55B881F8111B2DCDE494A5F485E5BCA4BD88A2763AE"
            "D1CA2B2FA8F0540678CD1E0F3AD80892", 16),
        int("AADD9DB8DBE9C48B3FD4E6AE33C9FC07CB308DB3B3C9D20ED6639CCA70330870553E5C414CA92619418661197FAC1047"
            "1DB1D381085DDADDB58796829CA90069", 16),
        1),
    18: Curve('secp521r1', '1.3.132.0.35',
        int("1FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF"
            "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF", 16),
        int("1FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF"
            "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC", 16),
        int("51953EB9618E1C9A1F929A21A0B68540EEA2DA725B99B315F3B8B489918EF109E156193951EC7E937B1652C0BD3BB1BF"
            "073573DF883D2C34F1EF451FD46B503F00", 16),
        int("C6858E06B70404E9CD9E3ECB662395B4429C648139053FB521F828AF606B4D3DBAA14B5E77EFE75928FE1DC127A2FFA8"
            "DE3348B3C1856A429BF97E7E31C2E5BD66", 16),
        int("11839296A789A3BC0045C8A5FB42C7D1BD998F54449579B446817AFBD17273E662C97EE72995EF42640C550B9013FAD0"
            "761353C7086A272C24088BE94769FD16650", 16),
        int("1FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFA51868783BF2F966B7FCC0148F709A"
            "5D03BB5C9B8899C47AEBB6FB71E91386409", 16),
        1),
}

CURVES_BY_NAME: dict[str, Curve] = {g.name: g for g in STANDARD.values() if isinstance(g, Curve)}
CURVES_BY_OID: dict[str, Curve] = {g.oid: g for g in CURVES_BY_NAME.values()}


def standard(parameter_id: int) -> Group:
    try:
        return STANDARD[parameter_id]
    except KeyError:
        raise GroupError(f"domain parameter id {parameter_id} is not standardized (0-2, 8-18)") from None


def curve_matching(p: int, a: int, b: int, gx: int, gy: int, n: int) -> Curve | None:
    """The standardized curve with these explicit parameters, if any."""
    for c in CURVES_BY_NAME.values():
        if (c.p, c.a % c.p, c.b, c.gx, c.gy, c.n) == (p, a % p, b, gx, gy, n):
            return c
    return None


ID_EC_PUBLIC_KEY = "1.2.840.10045.2.1"
ID_STANDARDIZED_DOMAIN_PARAMETERS = "0.4.0.127.0.7.1.2"  # BSI TR-03110: AlgorithmIdentifier {OID, INTEGER id}


ID_DH_PUBLIC_NUMBER = "1.2.840.10046.2.1"   # X9.42 dhpublicnumber: DomainParameters {p, g, q, ...}
ID_DH_KEY_AGREEMENT = "1.2.840.113549.1.3.1"  # PKCS #3 dhKeyAgreement: {p, g [, l]} (no q)


def dh_group(p: int, g: int, q: int | None = None) -> DhGroup:
    """The DH group of these parameters: a standardized one when p and g match (its q), else one
    built from them; without q a safe-prime subgroup ((p-1)/2) is assumed. `GroupError` when g is
    not of order q."""
    for std in STANDARD.values():
        if isinstance(std, DhGroup) and (std.p, std.g) == (p, g) and q in (None, std.q):
            return std
    if q is None:
        q = (p - 1) // 2
    if p < 3 or not 1 < g < p - 1 or pow(g, q, p) != 1:
        raise GroupError("DH parameters: g is not of order q modulo p")
    return DhGroup(f"DH-{p.bit_length()}", p, g, q)


def dh_public_key(spki: bytes) -> tuple[DhGroup, int]:
    """(group, y) of a DH SubjectPublicKeyInfo: X9.42 dhpublicnumber {p, g, q}, PKCS #3
    dhKeyAgreement {p, g}, or BSI standardizedDomainParameters with a DH parameter id (0-2)."""
    from asn1crypto import core

    try:
        outer = core.Sequence.load(bytes(spki), strict=True)
        algorithm = core.Sequence.load(outer[0].dump(), strict=True)
        oid = core.ObjectIdentifier.load(algorithm[0].dump()).dotted
        public = core.BitString.load(outer[1].dump())
        y = core.Integer.load(bytes(public.contents[1:]), strict=True).native
        if oid == ID_STANDARDIZED_DOMAIN_PARAMETERS:
            group = standard(core.Integer.load(algorithm[1].dump()).native)
            if not isinstance(group, DhGroup):
                raise GroupError("standardized domain parameters of a curve in a DH key")
        elif oid in (ID_DH_PUBLIC_NUMBER, ID_DH_KEY_AGREEMENT):
            params = core.Sequence.load(algorithm[1].dump(), strict=True)
            p, g = core.Integer.load(params[0].dump()).native, core.Integer.load(params[1].dump()).native
            q = core.Integer.load(params[2].dump()).native if oid == ID_DH_PUBLIC_NUMBER else None
            group = dh_group(p, g, q)
        else:
            raise GroupError(f"not a DH public key (algorithm {oid})")
    except GroupError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, OverflowError) as exc:
        raise GroupError(f"DH public key does not parse: {exc}") from None
    if not group.contains(y):
        raise GroupError(f"DH public key is not in the subgroup of {group.name}")
    return group, y


def ec_public_key(spki: bytes) -> tuple[Curve, tuple[int, int]]:
    """(curve, point) of an EC SubjectPublicKeyInfo: id-ecPublicKey with a named curve or explicit
    parameters of a known curve, or BSI standardizedDomainParameters with a parameter id (as
    EF.CardSecurity and DG14 carry chip-authentication keys). `GroupError` otherwise."""
    from asn1crypto import core, keys

    try:
        outer = core.Sequence.load(bytes(spki), strict=True)
        algorithm = core.Sequence.load(outer[0].dump(), strict=True)
        oid = core.ObjectIdentifier.load(algorithm[0].dump()).dotted
        public = core.BitString.load(outer[1].dump())
        point_bytes = bytes(public.contents[1:]) if public.contents[:1] == b"\x00" else None
        curve = None
        if oid == ID_STANDARDIZED_DOMAIN_PARAMETERS:
            group = STANDARD.get(core.Integer.load(algorithm[1].dump()).native)
            curve = group if isinstance(group, Curve) else None
        elif oid == ID_EC_PUBLIC_KEY:
            params = keys.ECDomainParameters.load(algorithm[1].dump())
            if params.name == "named":
                curve = CURVES_BY_OID.get(params.chosen.dotted)
            elif params.name == "specified":
                d = params.chosen
                p = d["field_id"]["parameters"].native
                size = (p.bit_length() + 7) // 8
                base = d["base"].native
                if base[:1] == b"\x04" and len(base) == 1 + 2 * size:
                    curve = curve_matching(p, int.from_bytes(d["curve"]["a"].native, "big"),
                                           int.from_bytes(d["curve"]["b"].native, "big"),
                                           int.from_bytes(base[1:1 + size], "big"),
                                           int.from_bytes(base[1 + size:], "big"), d["order"].native)
        else:
            raise GroupError(f"public key algorithm {oid} is not EC")
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        raise GroupError(f"EC public key does not parse: {exc}") from None
    if curve is None:
        raise GroupError("EC public key on a curve we do not know")
    if point_bytes is None:
        raise GroupError("EC public key BIT STRING has unused bits")
    return curve, curve.decode(point_bytes)
