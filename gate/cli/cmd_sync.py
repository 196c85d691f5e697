"""egate sync status --config FILE: the gate's outbox and its sync agent, from the outbox database."""
import json

from gate import config
from sync.outbox import Outbox


def register(sub):
    p = sub.add_parser("sync", help="the store-and-forward sync agent")
    s = p.add_subparsers(dest="sync_command", required=True)
    st = s.add_parser("status", help="active endpoint, backlog, oldest unacknowledged, last acknowledgement, errors")
    st.add_argument("--config", required=True, help="gate config (TOML)")
    st.add_argument("--json", action="store_true")
    st.set_defaults(func=status)


def status(args) -> int:
    cfg = config.load_gate(args.config)
    box = Outbox.inspect(cfg.storage.data_dir / "outbox.sqlite")
    try:
        report = {"gate": box.gate_id, "endpoints": dict(cfg.sync.endpoints), "backlog": box.backlog(),
                  "agent": box.agent_status()}
    finally:
        box.stop()
    if args.json:
        print(json.dumps(report, sort_keys=True))
        return 0
    agent, backlog = report["agent"] or {}, report["backlog"]
    print(f"gate {report['gate']}")
    print(f"  active endpoint  {agent.get('active', '-')} {agent.get('url') or ''}")
    print(f"  backlog          {backlog['depth']} records ({backlog['acked_by_backup_only']} held by a backup only)"
          f", limit {backlog['max_records']}")
    print(f"  oldest unacked   {backlog['oldest_age_s'] if backlog['oldest_age_s'] is not None else '-'} s")
    print(f"  last ack         {agent.get('last_ack_at') or '-'}")
    print(f"  acknowledged     {agent.get('acked') or {}}")
    for sw in agent.get("switches") or []:
        print(f"  switch           {sw['at']} -> {sw['to']} ({sw['why']})")
    for err in agent.get("errors") or []:
        print(f"  error            {err}")
    return 0
