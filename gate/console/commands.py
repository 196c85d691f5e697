"""Every console command: what it does on the gate's loop (blocking device work in worker threads),
the data it answers (`--json` prints that) and its lean text (a few lines at 115200 baud). No
command shows personal data: no document number, no name, no image, no template.
"""
from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import platform
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from core import logs
from core.errors import EGateError
from drivers.door.protocol import Leaf
from gate.console.lane import LaneOps, Refused
from gate.console.protocol import alert_line
from gate.console.registry import Command, Registry

FLUSH_S = 10.0


@dataclass
class Call:
    """One command being run: who asked, its arguments, and the gate."""
    app: Any                                   # gate.app.GateApp
    lane: LaneOps
    service: Any                               # gate.console.service.ConsoleService
    user: str
    role: str
    args: list[str]
    progress: Callable[[str], Awaitable[None]]
    send: Callable[[dict], Awaitable[None]]    # a streamed message (watch)
    audited: list[tuple[str, dict]] = field(default_factory=list)   # the command's own audit entries (device tests)

    async def blocking(self, fn, *args):
        return await self.app.reactor.run_blocking(fn, *args)


def _n(call: Call, default: int, most: int) -> int:
    if not call.args:
        return default
    try:
        n = int(call.args[0])
    except ValueError:
        raise Refused(f"N must be a number, not {call.args[0]!r}") from None
    if not 1 <= n <= most:
        raise Refused(f"N must be 1..{most}")
    return n


def _rows(rows) -> str:
    rows = [(str(k), "-" if v is None else str(v)) for k, v in rows]
    width = max((len(k) for k, _ in rows), default=0)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)


def _kv(data: dict) -> str:
    return _rows((k.replace("_", " "), v) for k, v in data.items())


def _sha256(path) -> str | None:
    try:
        with open(path, "rb") as fh:
            return hashlib.sha256(fh.read()).hexdigest()
    except OSError:
        return None


# ------------------------------------------------------------------------ help, show

async def help_(call: Call) -> dict:
    return {"commands": [list(row) for row in call.service.registry.help(call.role, call.args)]}


def render_help(data: dict) -> str:
    return _rows(data["commands"]) + "\nwords abbreviate (sh st); Tab completes; logout ends the session"


async def show_status(call: Call) -> dict:
    c, app = call.app.controller, call.app
    snap = c.status_snapshot()
    return {"gate": app.cfg.gate.id, "lane": c.machine.state, "devices": "ok" if c.machine.healthy else "fault",
            "faults": {name: why for name, why in c.last_health.items() if why},
            "emergency": c.emergency, "tamper": c.tamper, "occupancy": c.occupancy(),
            "passages": len(c.records), "alerts": len(c.alerts), "outbox": app.outbox.depth(),
            "sync": app.sync.machine.active if app.sync.urls else "off", "in_service_s": snap["in_service_s"]}


def render_status(d: dict) -> str:
    faults = ", ".join(f"{k}: {v}" for k, v in d["faults"].items()) or "none"
    flags = " ".join(f for f in ("emergency", "tamper") if d[f]) or "none"
    return _rows([("gate", d["gate"]), ("lane", d["lane"]), ("devices", f"{d['devices']} (faults: {faults})"),
                  ("alarms", flags), ("occupancy", d["occupancy"]),
                  ("passages", f"{d['passages']}, officer alerts {d['alerts']}"),
                  ("outbox", f"{d['outbox']} records, sync {d['sync']}"), ("in service", f"{d['in_service_s']} s")])


async def show_devices(call: Call) -> dict:
    def statuses():
        out = []
        for comp in call.app.reactor.components:
            try:
                s = comp.status()
                out.append({"name": s.name, "healthy": s.healthy, "detail": s.detail})
            except Exception as exc:  # noqa: BLE001 - a status that fails is a result
                out.append({"name": getattr(comp, "name", "?"), "healthy": False, "detail": f"{type(exc).__name__}: {exc}"})
        return out

    return {"devices": await call.blocking(statuses)}


def render_devices(d: dict) -> str:
    return _rows((x["name"], f"{'ok  ' if x['healthy'] else 'FAIL'} {x['detail']}") for x in d["devices"])


async def show_passage_last(call: Call) -> dict:
    records = call.app.controller.records
    if not records:
        return {"passage": None}
    r = records[-1]
    return {"passage": {"passage_id": r.passage_id, "started": r.started, "outcome": r.outcome, "reasons": r.reasons,
                        "timings_s": r.timings_s}}


def render_passage(d: dict) -> str:
    p = d["passage"]
    if p is None:
        return "no passage since the gate started"
    timings = " ".join(f"{k}={v}" for k, v in p["timings_s"].items())
    return _rows([("passage", p["passage_id"]), ("started", p["started"]), ("outcome", p["outcome"]),
                  ("reasons", ", ".join(p["reasons"]) or "none"), ("timings s", timings)])


async def show_counters(call: Call) -> dict:
    snap = call.app.controller.status_snapshot()
    return {"counters": snap["counters"], "in_service_s": snap["in_service_s"], "outbox": call.app.outbox.depth()}


def render_counters(d: dict) -> str:
    return _rows(list(d["counters"].items()) + [("in service s", d["in_service_s"]), ("outbox", d["outbox"])])


async def show_log(call: Call) -> dict:
    n = _n(call, 20, 200)
    return {"lines": [dict(e) for e in list(logs.RECENT)[-n:]]}


def render_log(d: dict) -> str:
    out = []
    for e in d["lines"]:
        rest = " ".join(f"{k}={v}" for k, v in e.items() if k not in ("event", "timestamp", "level", "gate_id"))
        line = f"{str(e.get('timestamp', ''))[11:19]} {e.get('level', '')[:4]:4} {e.get('event', '')} {rest}"
        out.append(line[:158])
    return "\n".join(out) or "no log lines kept (the log is not configured in this process)"


def _flat(obj, prefix=""):
    for f in dataclasses.fields(obj):
        if f.metadata.get("internal"):
            continue
        value, key = getattr(obj, f.name), f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value):
            yield from _flat(value, key + ".")
        else:
            default = f.default if f.default is not dataclasses.MISSING else dataclasses.MISSING
            yield key, value, default


async def show_config(call: Call) -> dict:
    cfg = call.app.cfg
    changed = {k: v for k, v, default in _flat(cfg) if v != default}
    return {"file": str(cfg.source), "sha256": _sha256(cfg.source) if cfg.source else None,
            "settings": {k: str(v) for k, v in changed.items()}}


def render_config(d: dict) -> str:
    return _rows([("file", d["file"]), ("sha256", d["sha256"])] + list(d["settings"].items())) \
        + "\n(settings that differ from their defaults)"


async def show_version(call: Call) -> dict:
    import gate

    cfg = call.app.cfg
    return {"egate": gate.__version__, "python": platform.python_version(), "gate": cfg.gate.id,
            "config_sha256": _sha256(cfg.source) if cfg.source else None,
            "uptime_s": round(time.monotonic() - call.service.started, 1)}


async def show_alerts(call: Call) -> dict:
    n = _n(call, 10, 100)
    return {"alerts": [call.service.alert_dict(a) for a in call.app.controller.alerts[-n:]]}


def render_alerts(d: dict) -> str:
    return "\n".join(alert_line(a) for a in d["alerts"]) or "no officer alert since the gate started"


# ------------------------------------------------------------------------ sensors, tests

async def sensors(call: Call) -> dict:
    return call.lane.sensors()


def render_sensors(d: dict) -> str:
    b = d["beams"]

    def row(bits: int) -> str:
        return "".join("#" if bits >> i & 1 else "." for i in range(b["count"]))

    beams = "unknown" if b is None else f"low {row(b['low'])}  high {row(b['high'])}  (entry side first)"
    return _rows([("entry leaf", d["entry"]), ("exit leaf", d["exit"]), ("beams", beams),
                  ("occupancy", f"{d['occupancy']} persons, {d['objects']} objects"),
                  ("inputs", f"emergency {'ON' if d['emergency'] else 'off'}, tamper {'ON' if d['tamper'] else 'off'}, "
                             f"power {d['power']}, link {d['link']}")])


def _door(leaf: Leaf):
    async def run(call: Call) -> dict:
        await call.progress(f"opening the {leaf.name.lower()} leaf, then locking it")
        result = await call.lane.test_door(leaf)
        call.audited.append(("device.test", {"device": f"door.{leaf.name.lower()}", "passed": result["passed"]}))
        return result
    return run


def render_door(d: dict) -> str:
    return _rows([("leaf", d["leaf"]), ("opened", f"{d['open_s']} s" if d["opened"] else "NO"),
                  ("locked", f"{d['lock_s']} s" if d["locked"] else "NO"), ("interlock", d["interlock"]),
                  ("result", "pass" if d["passed"] else "FAIL")])


EMRTD_AID = bytes.fromhex("00A4040C07A0000002471001")


async def test_reader(call: Call) -> dict:
    app = call.app

    def probe() -> dict:
        mrz = app.mrz.status()
        out = {"mrz_link": mrz.healthy, "document_present": bool(app.mrz.document_present)}
        chip = app.chip_reader.status()
        out.update(chip_reader=chip.healthy, chip_reader_detail=chip.detail, card_present=False, applet=None)
        if chip.healthy:
            try:
                app.chip_reader.wait_for_card(1.0)
                out["card_present"] = True
                with app.chip_reader.connect() as card:
                    sw = card.transmit(EMRTD_AID)[-2:]
                out["applet"] = "selected" if sw == b"\x90\x00" else f"SW {sw.hex().upper()}"
            except EGateError as exc:
                out["error"] = f"{type(exc).__name__}: {exc}"
        return out

    result = await call.blocking(probe)
    result["passed"] = result["mrz_link"] and result["chip_reader"]
    call.audited.append(("device.test", {"device": "reader", "passed": result["passed"]}))
    return result


def render_reader(d: dict) -> str:
    return _rows([("mrz reader", f"link {'up' if d['mrz_link'] else 'DOWN'}, document "
                                 f"{'present' if d['document_present'] else 'absent'}"),
                  ("chip reader", d["chip_reader_detail"]),
                  ("card", f"{'present' if d['card_present'] else 'absent'}"
                           + (f", eMRTD applet {d['applet']}" if d["applet"] else "")),
                  ("result", "pass" if d["passed"] else "FAIL")] + ([("error", d["error"])] if "error" in d else []))


async def test_camera(call: Call) -> dict:
    import cv2
    import numpy as np

    app = call.app

    def probe() -> dict:
        camera = app.camera
        first = camera.wait_frame(0, 3.0)
        t0, frame = time.monotonic(), first
        while time.monotonic() - t0 < 1.0:
            frame = camera.wait_frame(frame.seq, 1.0)
        fps = (frame.seq - first.seq) / max(time.monotonic() - t0, 1e-6)
        grey = cv2.cvtColor(frame.image, cv2.COLOR_BGR2GRAY)
        faces = app.controller.dev.face.pipeline.detector.detect(frame.image)
        stats = {"width": int(grey.shape[1]), "height": int(grey.shape[0]), "fps": round(fps, 1),
                 "brightness": round(float(np.mean(grey)), 1), "contrast": round(float(np.std(grey)), 1),
                 "sharpness": round(float(cv2.Laplacian(grey, cv2.CV_64F).var()), 1), "faces": len(faces)}
        grey.fill(0)
        return stats

    try:
        result = await call.blocking(probe)
        result["passed"] = result["fps"] > 0
    except EGateError as exc:
        result = {"passed": False, "error": str(exc)}
    call.audited.append(("device.test", {"device": "camera", "passed": result["passed"]}))
    return result


def render_camera(d: dict) -> str:
    if "error" in d:
        return _rows([("result", "FAIL"), ("error", d["error"])])
    return _rows([("frame", f"{d['width']}x{d['height']} at {d['fps']} fps"),
                  ("light", f"brightness {d['brightness']}/255, contrast {d['contrast']}"),
                  ("sharpness", f"{d['sharpness']} (Laplacian variance)"), ("faces", d["faces"]),
                  ("result", "pass")])


async def test_finger(call: Call) -> dict:
    from biometrics.finger.matcher import FingerVerifier
    from biometrics.privacy import BiometricSample

    app = call.app
    cfg = app.cfg
    await call.progress(f"place a finger on the scanner (within {cfg.timeouts.finger_capture_s:g} s)")

    def capture() -> dict:
        image = app.scanner.capture(timeout_s=cfg.timeouts.finger_capture_s)
        with BiometricSample.from_array(image, kind="finger image") as sample:
            image.fill(0)
            _, report = FingerVerifier(cfg.thresholds.finger_fmr, cfg.thresholds.nfiq2_min).capture(sample)
        return {"nfiq2": report.nfiq2, "nfiq2_min": report.nfiq2_min, "minutiae": report.minutiae,
                "passed": report.passed, "guidance": report.guidance}

    try:
        result = await call.blocking(capture)
    except EGateError as exc:
        result = {"passed": False, "error": str(exc)}
    call.audited.append(("device.test", {"device": "fingerprint", "passed": result["passed"]}))
    return result


def render_finger(d: dict) -> str:
    if "error" in d:
        return _rows([("result", "FAIL"), ("error", d["error"])])
    return _rows([("NFIQ 2", f"{d['nfiq2']} (gate at {d['nfiq2_min']})"), ("minutiae", d["minutiae"]),
                  ("guidance", d["guidance"] or "none"), ("result", "pass" if d["passed"] else "FAIL")])


# ------------------------------------------------------------------------ maintenance, sync, config, audit

def _maintenance(on: bool):
    async def run(call: Call) -> dict:
        return await call.lane.maintenance(on, call.user, call.progress)
    return run


def render_state(d: dict) -> str:
    return f"lane {d['state']}"


async def sync_status(call: Call) -> dict:
    app = call.app
    agent = app.sync
    return {"endpoints": dict(app.cfg.sync.endpoints), "active": agent.machine.active if agent.urls else None,
            "backlog": app.outbox.backlog(), "last_ack_at": agent.last_ack_at, "acked": dict(agent.sent),
            "errors": list(agent.errors)[-3:]}


def render_sync(d: dict) -> str:
    b = d["backlog"]
    rows = [("sending to", f"{d['active']} {d['endpoints'].get(d['active'], '')}" if d["active"]
             else "nobody: no endpoint configured, records stay in the outbox"),
            ("backlog", f"{b['depth']} records ({b['acked_by_backup_only']} held by a backup only), "
                        f"oldest {b['oldest_age_s']} s"),
            ("last ack", d["last_ack_at"]), ("acknowledged", d["acked"] or "none")]
    return _rows(rows + [("error", e[:140]) for e in d["errors"]])


async def sync_flush(call: Call) -> dict:
    app = call.app
    if not app.sync.urls:
        raise Refused("no sync endpoint configured: records stay in the outbox")
    before = app.outbox.depth()
    app.sync.nudge()
    deadline = time.monotonic() + FLUSH_S
    while app.outbox.depth() and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    return {"before": before, "after": app.outbox.depth(), "active": app.sync.machine.active}


def render_flush(d: dict) -> str:
    return f"outbox {d['before']} -> {d['after']} records (sending to {d['active']})"


async def config_validate(call: Call) -> dict:
    from gate.config import load_gate

    source = call.app.cfg.source
    if source is None:
        raise Refused("the running config came from no file")
    try:
        await call.blocking(load_gate, source)
        error = None
    except EGateError as exc:
        error = str(exc)
    digest = _sha256(source)
    return {"file": str(source), "valid": error is None, "error": error, "sha256": digest,
            "running_sha256": call.service.config_sha256}


def render_validate(d: dict) -> str:
    same = "same as the running config" if d["sha256"] == d["running_sha256"] else "DIFFERS from the running " \
                                                                                   "config: a restart applies it"
    return _rows([("file", d["file"]), ("valid", "yes" if d["valid"] else f"NO: {d['error']}"), ("on disk", same)])


async def audit_tail(call: Call) -> dict:
    import json

    n = _n(call, 10, 200)

    def tail() -> list[dict]:
        with open(call.app.audit.path, "rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(max(0, size - 2048 * n))
            lines = fh.read().splitlines()[-n:]
        return [json.loads(x) for x in lines if x.startswith(b"{")]

    return {"entries": await call.blocking(tail)}


def render_audit(d: dict) -> str:
    out = []
    for e in d["entries"]:
        details = " ".join(f"{k}={v}" for k, v in e["details"].items() if k != "gate_id")
        out.append(f"{e['seq']:>6} {e['ts'][11:19]} {e['actor']} {e['action']} {details}"[:158])
    return "\n".join(out)


async def logout(call: Call) -> dict:
    return {"logout": True}


# ------------------------------------------------------------------------ officer

async def release(call: Call) -> dict:
    return call.lane.release()


def render_release(d: dict) -> str:
    return f"released passage {d['passage_id']}: the entry locks, then the exit opens (lane {d['state']})"


async def lane_close(call: Call) -> dict:
    return await call.lane.close(call.progress)


async def lane_open(call: Call) -> dict:
    return call.lane.open()


async def watch(call: Call) -> dict:
    queue = call.service.watch()
    try:
        await call.progress(f"officer alerts of {call.app.cfg.gate.id}; Ctrl-C ends")
        while True:
            await call.send({"alert": await queue.get()})
    finally:
        call.service.unwatch(queue)


OFFICER_ACTIONS = {("release",): "release", ("lane", "close"): "close", ("lane", "open"): "open"}


def build() -> Registry:
    V, T, A, O = "viewer", "technician", "admin", "officer"
    c = Command
    return Registry([
        c(("help",), V, "commands you may run (help WORD: those under it)", help_, render_help, "[WORD...]", (0, 3)),
        c(("?",), V, "same as help", help_, render_help, "[WORD...]", (0, 3)),
        c(("show", "status"), V, "lane state, device faults, alarms, outbox", show_status, render_status),
        c(("show", "devices"), V, "each device's link and counters", show_devices, render_devices),
        c(("show", "passage", "last"), V, "the last passage: outcome, reasons, timings", show_passage_last,
          render_passage),
        c(("show", "counters"), V, "passages by outcome, alerts, time in service", show_counters, render_counters),
        c(("show", "sync"), V, "where records go, backlog, last acknowledgement", sync_status, render_sync),
        c(("show", "log"), V, "the latest N log lines (default 20)", show_log, render_log, "[N]", (0, 1)),
        c(("show", "config"), V, "the config file, its hash, settings that differ from defaults", show_config,
          render_config),
        c(("show", "version"), V, "software, config hash, uptime", show_version, _kv),
        c(("show", "alerts"), V, "the latest N officer alerts (default 10)", show_alerts, render_alerts, "[N]", (0, 1)),
        c(("sensors",), V, "leaves, beams, emergency and tamper inputs, now", sensors, render_sensors),
        c(("test", "door", "entry"), T, "open and lock the entry leaf (maintenance)", _door(Leaf.ENTRY), render_door,
          maintenance=True),
        c(("test", "door", "exit"), T, "open and lock the exit leaf (maintenance)", _door(Leaf.EXIT), render_door,
          maintenance=True),
        c(("test", "reader"), T, "MRZ reader and chip reader: links, document and chip present (maintenance)",
          test_reader, render_reader, maintenance=True),
        c(("test", "camera"), T, "frame size, rate, light, sharpness, faces seen (maintenance)", test_camera,
          render_camera, maintenance=True),
        c(("test", "finger"), T, "capture one finger: NFIQ 2 quality only (maintenance)", test_finger, render_finger,
          maintenance=True),
        c(("maintenance", "on"), T, "take the lane out of service once the passage in progress ends",
          _maintenance(True), render_state),
        c(("maintenance", "off"), T, "give the lane back (it recovers first)", _maintenance(False), render_state),
        c(("sync", "status"), V, "same as show sync", sync_status, render_sync),
        c(("sync", "flush"), T, "send the outbox now and wait up to 10 s", sync_flush, render_flush),
        c(("config", "validate"), T, "check the config file on disk as a restart would load it", config_validate,
          render_validate),
        c(("audit", "tail"), A, "the latest N audit entries (default 10)", audit_tail, render_audit, "[N]", (0, 1)),
        c(("logout",), V, "end this session", logout, lambda d: "bye"),
        c(("release",), O, "open the exit for the refused traveller you cleared by hand", release, render_release),
        c(("lane", "close"), O, "close the lane once the passage in progress ends", lane_close, render_state),
        c(("lane", "open"), O, "open the lane you closed (it recovers first)", lane_open, render_state),
        c(("watch",), O, "stream officer alerts until Ctrl-C", watch, stream=True),
    ])
