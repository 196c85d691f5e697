"""Fault-injection API shared by the simulators: validation, counted faults, control requests, CLI parsing."""
from __future__ import annotations

import pytest

from simulators.faults import ControlServer, FaultError, Faults, parse_fault_arg, parse_params, send_control


def test_inject_validates_names_and_parameters():
    f = Faults(("drop", "slow"))
    with pytest.raises(FaultError, match="not supported"):
        f.inject("unplug")
    with pytest.raises(FaultError, match="takes"):
        f.inject("drop", delay_s=1)
    with pytest.raises(FaultError, match="bad parameter"):
        f.inject("slow", delay_s="soon")
    with pytest.raises(FaultError, match="unknown fault kinds"):
        Faults(("meltdown",))
    assert f.inject("slow") == {"delay_s": 0.2}  # defaults


def test_counted_fault_is_consumed_then_gone():
    changes = []
    f = Faults(on_change=lambda name, params: changes.append((name, params)))
    f.inject("corrupt_crc", count=2)
    assert [f.consume("corrupt_crc") for _ in range(3)] == [True, True, False]
    assert f.active("corrupt_crc") is None and f.injected["corrupt_crc"] == 1
    f.inject("stuck_leaf", leaf="exit")
    f.clear()
    assert changes[-1] == ("stuck_leaf", None)


def test_control_requests():
    f = Faults()
    called = []
    commands = {"emergency": lambda on=True: called.append(on)}
    assert f.control({"fault": "drop", "count": 3}, commands) == {"ok": True, "active": {"count": 3}}
    assert f.control({"clear": "drop"}, commands) == {"ok": True} and f.active("drop") is None
    assert f.control({"do": "emergency", "on": False}, commands)["ok"] and called == [False]
    with pytest.raises(FaultError, match="unknown command"):
        f.control({"do": "explode"}, commands)
    with pytest.raises(FaultError, match="needs one of"):
        f.control({"hello": 1}, commands)


def test_control_socket_answers_errors_as_replies(tmp_path):
    f = Faults()
    server = ControlServer(str(tmp_path / "c.sock"), lambda req: f.control(req, {}))
    try:
        assert send_control(server.path, {"fault": "garbage", "nbytes": 4})["ok"]
        reply = send_control(server.path, {"fault": "garbage", "nbytes": "many"})
        assert reply["ok"] is False and "FaultError" in reply["error"]
    finally:
        server.close()
    assert not (tmp_path / "c.sock").exists()


def test_cli_parsing():
    assert parse_params(["duration_s=2", "on=true", "leaf=exit"]) == {"duration_s": 2, "on": True, "leaf": "exit"}
    assert parse_fault_arg("slow:delay_s=0.5") == ("slow", {"delay_s": 0.5})
    assert parse_fault_arg("unplug") == ("unplug", {})
    with pytest.raises(FaultError):
        parse_params(["novalue"])
