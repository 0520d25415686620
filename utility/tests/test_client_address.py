"""The client address: only our proxies may name it (utility.client_address)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from utility.client_address import client_address_from_meta

PROXY = "10.0.0.2"


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        ("203.0.113.5", "", "203.0.113.5"),
        # A direct peer that is not our proxy is the client, whatever it claims.
        ("203.0.113.5", "127.0.0.1", "203.0.113.5"),
        ("203.0.113.5", f"198.51.100.1, {PROXY}", "203.0.113.5"),
        # Through the proxy: the address it saw (the rightmost entry), not what the client wrote.
        (PROXY, "198.51.100.1", "198.51.100.1"),
        (PROXY, "127.0.0.1, 198.51.100.1", "198.51.100.1"),
        (PROXY, "junk, 198.51.100.1", "198.51.100.1"),
        # Through two of our proxies (a load balancer in front of nginx).
        (PROXY, f"198.51.100.1, {PROXY}", "198.51.100.1"),
        # The proxy without a header, or with one naming no address: the proxy itself.
        (PROXY, "", PROXY),
        (PROXY, "not-an-address", PROXY),
        (PROXY, "2001:db8::1", "2001:db8::1"),
        ("", "198.51.100.1", None),
    ],
)
def test_only_our_proxies_name_the_client(settings, peer, forwarded, client):
    settings.TRUSTED_PROXIES = [PROXY, "::1"]
    meta = {"REMOTE_ADDR": peer, "HTTP_X_FORWARDED_FOR": forwarded}
    assert client_address_from_meta(meta) == client


_ipv4 = st.ip_addresses(v=4).filter(lambda ip: not ip.is_private).map(str)


@given(
    claimed=st.lists(st.text(alphabet=st.characters(blacklist_characters=","), max_size=20)),
    client=_ipv4,
    hops=st.integers(min_value=0, max_value=3),
)
def test_whatever_the_client_writes_the_address_our_proxy_saw_wins(claimed, client, hops):
    from django.conf import settings

    original = settings.TRUSTED_PROXIES
    settings.TRUSTED_PROXIES = ["10.0.0.0/24"]
    try:
        # What the client wrote, then each proxy appends the address it was connected from.
        chain = [*claimed, client, *[f"10.0.0.{i + 2}" for i in range(hops)]]
        meta = {"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_FOR": ",".join(chain)}
        assert client_address_from_meta(meta) == client
        # Without our proxy in between, the same header names nobody but the sender.
        assert client_address_from_meta({**meta, "REMOTE_ADDR": client}) == client
    finally:
        settings.TRUSTED_PROXIES = original
