import pytest

from simulators import services


@pytest.fixture(scope="session")
def vpcd_ports():
    """pcscd + vpcd running for the whole session; fails (never skips) if they cannot start."""
    with services.pcscd_with_vpcd() as ports:
        yield ports


@pytest.fixture(scope="session")
def postgres_url():
    with services.postgres_server() as url:
        yield url


@pytest.fixture
def pty():
    with services.pty_pair() as pair:
        yield pair
