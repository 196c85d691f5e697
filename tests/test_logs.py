"""Logs carry decisions, never biometric bytes or secrets."""
import io
import json

import numpy as np

from core import logs
from core.settings import Secret


def test_passage_like_flow_logs_no_image_template_or_secret():
    stream = io.StringIO()
    logs.configure("debug", "json", stream=stream, gate_id="TPE-T1-D-07")
    face = np.full((480, 640, 3), 0x5A, dtype=np.uint8)
    template = bytes(range(256)) * 4
    log = logs.get("passage")
    log.info("face_captured", passage_id="p-1", frame=face, quality=0.91)
    log.info("finger_template", passage_id="p-1", template=template, nfiq2=55)
    log.info("face_match", passage_id="p-1", score=0.62, embedding=face[0, :128].tolist(), decision="match")
    log.info("sync_auth", client_key=Secret(b"-----BEGIN PRIVATE KEY-----abc"), password="hunter2", blob=b"\x01\x02")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["event"] for line in lines] == ["face_captured", "finger_template", "face_match", "sync_auth"]
    assert all(line["gate_id"] == "TPE-T1-D-07" and line["timestamp"].endswith("Z") for line in lines)
    assert lines[0]["frame"].startswith("[array") and lines[0]["quality"] == 0.91
    assert lines[1]["template"] == "[redacted]" and lines[1]["nfiq2"] == 55
    assert lines[2]["embedding"] == "[redacted]" and lines[2]["score"] == 0.62
    assert lines[3]["client_key"] == lines[3]["password"] == "[redacted]"
    assert lines[3]["blob"] == "[2 bytes dropped]"
    text = stream.getvalue()
    assert "hunter2" not in text and "PRIVATE KEY" not in text and "90, 90" not in text and "Wlpa" not in text


def test_every_line_carries_the_gate_id_whatever_thread_logs_it():
    import threading

    stream = io.StringIO()
    logs.configure("info", "json", stream=stream, gate_id="TPE-T1-D-07")
    worker = threading.Thread(target=lambda: logs.get("transport").warning("port_down", port="door"))
    worker.start()
    worker.join()
    (line,) = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert line["event"] == "port_down" and line["gate_id"] == "TPE-T1-D-07"
