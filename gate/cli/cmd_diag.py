"""egate diag: the technician console's commands, one at a time, over the gate's console socket
(for SSH sessions and scripts); `egate diag console` for the interactive console on a serial port
or this terminal; `egate diag user ...` to manage the credentials file (docs/console.md).

    egate diag [--config FILE | --socket PATH] [--user NAME] [--password-stdin] [--json] COMMAND...
    egate diag console [--port URL [--baudrate N]] [--config FILE | --socket PATH]
    egate diag user add NAME --role ROLE | remove NAME | passwd NAME | list   [--accounts FILE | --config FILE]

Exit codes: 0 done, 1 refused or failed, 2 bad usage or config, 3 login failed.
"""
from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from pathlib import Path

DEFAULT_CONFIG = "/etc/egate/gate.toml"


def register(sub):
    p = sub.add_parser("diag", help="technician console commands over the gate's console socket (help lists them)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_connection_options(p)
    p.add_argument("--json", action="store_true", help="the command's data as JSON on stdout")
    p.add_argument("words", nargs=argparse.REMAINDER, metavar="COMMAND", help="e.g. show status; help")
    p.set_defaults(func=main)


def add_connection_options(p) -> None:
    p.add_argument("--config", help=f"the gate's config (default $EGATE_CONFIG or {DEFAULT_CONFIG})")
    p.add_argument("--socket", help="the console socket (default: console.socket of the config)")
    p.add_argument("--user", help="account name (default $EGATE_USER, else your login name)")
    p.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")


def _config(args):
    from gate import config

    return config.load_gate(args.config or os.environ.get("EGATE_CONFIG") or DEFAULT_CONFIG)


def socket_path(args) -> Path:
    if args.socket:
        return Path(args.socket)
    cfg = _config(args)
    return cfg.console.socket_path(cfg.storage.data_dir)


def _password(args, user: str) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return getpass.getpass(f"password for {user}: ")


def run_one(args, argv: list[str], *, json_out: bool) -> int:
    """Log in, run one command, log out; print its text (or data with --json)."""
    from gate.console.client import Client, LoginFailed
    from gate.console.protocol import alert_line

    user = args.user or os.environ.get("EGATE_USER") or getpass.getuser()
    password = _password(args, user)
    with Client(socket_path(args)) as client:
        try:
            client.login(user, password, f"cli:{os.environ.get('SSH_CONNECTION', 'local').split(' ')[0]}")
        except LoginFailed as exc:
            print(f"% {exc}", file=sys.stderr)
            return 3

        def message(m: dict) -> None:
            if "progress" in m:
                print(m["progress"], file=sys.stderr, flush=True)
            elif "alert" in m:
                print(json.dumps(m["alert"], sort_keys=True) if json_out else alert_line(m["alert"]), flush=True)

        try:
            reply = client.run(argv, message)
        except KeyboardInterrupt:
            client.cancel()
            reply = _rest(client, message)
        client.logout()
    if json_out:
        print(json.dumps({k: reply.get(k) for k in ("ok", "command", "data", "error") if k in reply}, sort_keys=True))
    elif reply.get("ok"):
        if reply.get("text"):
            print(reply["text"])
    elif reply.get("error") != "cancelled":
        print(f"% {reply.get('error')}", file=sys.stderr)
    return 0 if reply.get("ok") or reply.get("error") == "cancelled" else 1


def _rest(client, message) -> dict:
    """After a cancel: the command's last messages and its answer."""
    while True:
        reply = client.receive()
        if "ok" in reply:
            return reply
        message(reply)


def main(args) -> int:
    words = list(args.words)
    if words[:1] == ["--"]:
        words = words[1:]
    if not words:
        print("usage: egate diag [options] COMMAND... (egate diag help lists the commands)", file=sys.stderr)
        return 2
    if words[0] == "user":
        return _user(args, words[1:])
    if words[0] == "console":
        return _console(args, words[1:])
    return run_one(args, words, json_out=args.json)


def _console(args, rest: list[str]) -> int:
    from gate.console import serial as line

    p = argparse.ArgumentParser(prog="egate diag console")
    p.add_argument("--port", help="serial port (pyserial URL); default: this terminal (under a getty)")
    p.add_argument("--baudrate", type=int, default=115200)
    opts = p.parse_args(rest)
    path = socket_path(args)
    if opts.port:
        line.serve(line.SerialLine(opts.port, opts.baudrate), path)
    else:
        tty_line = line.TtyLine()
        line.serve(tty_line, path, once=True)
    return 0


def _user(args, rest: list[str]) -> int:
    from gate.console import accounts as acc

    p = argparse.ArgumentParser(prog="egate diag user")
    p.add_argument("--accounts", help="the credentials file (default: console.accounts of the config)")
    s = p.add_subparsers(dest="op", required=True)
    add = s.add_parser("add")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=acc.ROLES)
    s.add_parser("remove").add_argument("name")
    s.add_parser("passwd").add_argument("name")
    s.add_parser("list")
    opts = p.parse_args(rest)
    if opts.accounts:
        path = Path(opts.accounts)
    else:
        cfg = _config(args)
        path = cfg.console.accounts_path(cfg.storage.data_dir)
    try:
        if opts.op == "list":
            for a in acc.read_accounts(path).values():
                print(f"{a.name}\t{a.role}")
            return 0
        if opts.op == "remove":
            acc.remove_account(path, opts.name)
            print(f"removed {opts.name} from {path}")
            return 0
        password = _new_password(args, opts.name)
        if opts.op == "add":
            acc.add_account(path, opts.name, opts.role, password)
            print(f"added {opts.name} ({opts.role}) to {path}")
        else:
            acc.set_password(path, opts.name, password)
            print(f"new password for {opts.name} in {path}")
    except (acc.AccountsError, acc.AccountsFileError) as exc:
        print(f"% {exc}", file=sys.stderr)
        return 1
    return 0


def _new_password(args, name: str) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass(f"new password for {name}: ")
    if getpass.getpass("again: ") != first:
        from gate.console.accounts import AccountsError

        raise AccountsError("the two passwords differ")
    return first
