"""egate run --config FILE: the gate process (one per gate)."""
import asyncio

from gate import config
from core import logs


def register(sub):
    p = sub.add_parser("run", help="run the gate process until SIGTERM")
    p.add_argument("--config", required=True, help="gate config (TOML)")
    p.add_argument("--check", action="store_true", help="start, run the self-check, print it and stop")
    p.set_defaults(func=run)


def run(args) -> int:
    from gate.app import GateApp  # heavy imports (OpenCV, onnxruntime) only for this command

    cfg = config.load_gate(args.config)
    logs.configure(cfg.logging.level, cfg.logging.format, gate_id=cfg.gate.id)
    app = GateApp(cfg)
    failed = []

    async def check_and_stop():
        results = await app.reactor.self_check()
        for r in results:
            print(f"{'ok  ' if r.ok else 'FAIL'} {r.name:<12} {r.detail}")
        failed.extend(r for r in results if not r.ok)

    asyncio.run(app.run(check_and_stop if args.check else None))
    return 1 if failed else 0
