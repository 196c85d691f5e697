"""`egate demo` and `egate sim`: the commands the egate-simulators distribution adds to `egate`.

Registered through the `egate.commands` entry-point group (simulators/pyproject.toml), which
`gate.cli` discovers beside its own `gate/cli/cmd_*.py`; a gate without egate-simulators
installed has neither command.
"""
