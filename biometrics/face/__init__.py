"""Face pipeline: detect (YuNet) -> quality -> align (5 points) -> embed (SFace) -> match.

`FacePipeline` in `pipeline.py` wires the steps; each module is usable on its own.
"""
