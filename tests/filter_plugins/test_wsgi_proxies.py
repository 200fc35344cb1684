"""Trust of the client's address and scheme from the balancers' addresses only."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from wsgi_proxies import (
    FilterModule,
    wsgi_balancer_addresses,
    wsgi_trusted_networks,
    wsgi_trusted_proxy_lines,
    wsgi_unresolved_names,
)


def test_a_balancer_is_its_balancer_address_else_ansible_host_else_its_name():
    hostvars = {"lb1": {"balancer_address": "10.0.0.5", "ansible_host": "lb1.example.net"},
                "lb2": {"ansible_host": "lb2.example.net"}, "lb3": {}}
    assert wsgi_balancer_addresses(["lb1", "lb2", "lb3", "lb4"], hostvars) == [
        "10.0.0.5", "lb2.example.net", "lb3", "lb4"]
    assert wsgi_balancer_addresses(None, hostvars) == []


def test_names_are_resolved_and_addresses_become_networks():
    proxies = ["10.0.0.5", "192.168.1.0/24", "lb2.example.net", "2001:db8::7"]
    assert wsgi_unresolved_names(proxies) == ["lb2.example.net"]
    resolved = {"lb2.example.net": ["10.0.0.6", "10.0.0.5", "not-an-address"]}
    assert wsgi_trusted_networks(proxies, resolved) == [
        "10.0.0.5/32", "192.168.1.0/24", "10.0.0.6/32", "2001:db8::7/128"]


def test_a_name_that_resolves_to_nothing_is_an_error_naming_it():
    with pytest.raises(AnsibleFilterError, match="wsgi_trusted_proxies: 'lb9' resolves to no address on this host"):
        wsgi_trusted_networks(["lb9"], {"lb9": []})


def test_the_lines_trust_the_connections_own_peer_and_drop_anyone_elses_scheme():
    peer = "%{CONN_REMOTE_ADDR} -ipmatch '10.0.0.5/32' || %{CONN_REMOTE_ADDR} -ipmatch '10.0.1.0/24'"
    assert wsgi_trusted_proxy_lines(["10.0.0.5/32", "10.0.1.0/24"]) == [
        "RemoteIPHeader X-Forwarded-For",
        "RemoteIPInternalProxy 10.0.0.5/32 10.0.1.0/24",
        f"SetEnvIfExpr \"({peer}) && req('X-Forwarded-Proto') == 'https'\" HTTPS=on",
        f'RequestHeader unset X-Forwarded-Proto "expr=!({peer})"',
    ]
    assert wsgi_trusted_proxy_lines([]) == []
    with pytest.raises(AnsibleFilterError, match="allowed: IP addresses or networks"):
        wsgi_trusted_proxy_lines(["lb1"])


def test_filter_module_exports_the_filters():
    assert set(FilterModule().filters()) == {"wsgi_balancer_addresses", "wsgi_unresolved_names",
                                             "wsgi_trusted_networks", "wsgi_trusted_proxy_lines"}
