"""The technician console and the officer commands: one account store, one command registry, one
authenticated local socket, one audit path (docs/console.md).

    accounts.py   individual accounts (scrypt hashes in a credentials file), roles, lockout with backoff
    registry.py   the command tree: roles, unique-prefix abbreviation, completion (no gate imports)
    commands.py   what each command does, on the gate's loop, and its lean text rendering
    lane.py       what the console asks of the passage controller: maintenance, lane close/open,
                  officer release, door tests, sensors
    service.py    the Unix-socket server inside the gate process (a reactor service): login,
                  sessions, commands, the officer alert stream, every step audited
    protocol.py   its JSON-lines framing, both ends
    client.py     the blocking client: `egate diag`, `egate officer`, the serial console
    line.py       the sans-IO line discipline of the serial console (echo, editing, completion)
    session.py    the interactive session over a line: login, password, shell, idle timeout
    serial.py     the thin transport: a pyserial port in raw mode, or the tty a getty hands over

Only service.py, commands.py and lane.py run inside the gate process; the console process
(`egate diag console`) imports the client side alone, so the serial line's parser never runs in the
process that drives the doors.
"""
