"""Tests for the balancer filter plugin: member URLs, and reading a real balancer-manager page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import balancer
import pytest
from ansible.errors import AnsibleFilterError
from balancer import (
    FilterModule,
    balancer_manager_state,
    balancer_member_busy,
    balancer_member_url,
)

# Captured from Apache 2.4.71's balancer-manager: balancer 'web' with member 1 drained and member 2
# failing its health check.
PAGE = (Path(__file__).parent / "fixtures" / "balancer-manager.html").read_text()
NONCE = "0396b51b-cf5f-14f1-1eec-1757b603cb15"
MEMBER1 = "http://127.0.0.1:81"
MEMBER2 = "http://127.0.0.2:82"
MEMBER1_STATUS = "<td>Init Drn Ok </td><td>0</td><td>0</td>"
MEMBER2_STATUS = "<td>Init HcFl </td><td>0</td><td>0</td>"


def replaced(page: str, old: str, new: str, count: int = 1) -> str:
    """page with old replaced by new, failing if the fixture no longer holds old exactly count times."""
    assert page.count(old) == count, f"{old!r} occurs {page.count(old)} times in the page, expected {count}"
    return page.replace(old, new)


def section(page: str) -> str:
    """The page's one balancer section: its <h3> heading through its worker table."""
    start = page.index("<h3>")
    end = page.index("</table>\n<hr />", start) + len("</table>\n<hr />")
    return page[start:end]


# --------------------------------------------------------------------------- balancer_member_url


HOSTVARS: dict[str, dict[str, Any]] = {
    "web1": {"balancer_member_address": "10.0.0.1", "ansible_host": "192.0.2.1"},
    "web2": {"ansible_host": "192.0.2.2"},
    "web3.example.com": {},
    "web4": {"balancer_member_address": "", "ansible_host": "192.0.2.4"},
    "web6": {"ansible_host": "2001:db8::6"},
    "web7": {"balancer_member_address": "fd00::7", "ansible_host": "192.0.2.7"},
    "web8": {"balancer_member_address": "[fd00::8]"},
}


@pytest.mark.parametrize(("host", "url"), [
    ("web1", "http://10.0.0.1"),  # balancer_member_address wins over ansible_host
    ("web2", "http://192.0.2.2"),  # else ansible_host
    ("web3.example.com", "http://web3.example.com"),  # else the inventory name
    ("web4", "http://192.0.2.4"),  # an empty balancer_member_address is no address
    ("web6", "http://[2001:db8::6]"),  # IPv6 literals are bracketed
    ("web7", "http://[fd00::7]"),
    ("web8", "http://[fd00::8]"),  # and not bracketed twice
])
def test_member_url_address(host: str, url: str) -> None:
    assert balancer_member_url(host, HOSTVARS) == url


@pytest.mark.parametrize(("port", "url"), [
    (8080, "http://192.0.2.2:8080"), ("8080", "http://192.0.2.2:8080"), (" 81", "http://192.0.2.2:81"),
])
def test_member_url_port_is_an_int(port: Any, url: str) -> None:
    assert balancer_member_url("web2", HOSTVARS, port) == url


def test_member_url_is_the_workers_name_in_apache() -> None:
    """mod_proxy drops port 80 from a worker's name and lower-cases the host: the manager lists it so."""
    assert balancer_member_url("Web2", {"Web2": {"ansible_host": "Lab-Web2"}}, 80) == "http://lab-web2"
    assert balancer_member_url("Web2", {"Web2": {"ansible_host": "Lab-Web2"}}, "80") == "http://lab-web2"


def test_member_url_ipv6_with_port() -> None:
    assert balancer_member_url("web6", HOSTVARS, "8000") == "http://[2001:db8::6]:8000"


def test_member_url_unknown_host_is_named() -> None:
    with pytest.raises(AnsibleFilterError, match="balancer_member_url: 'web9' is not a host of the inventory"):
        balancer_member_url("web9", HOSTVARS)


# --------------------------------------------------------------------------- the captured page


def test_real_page_is_read_exactly() -> None:
    assert balancer_manager_state(PAGE, "web") == {
        "nonce": NONCE,
        "members": {
            MEMBER1: {"route": "a", "status": ["Init", "Drn", "Ok"], "flags": ["drain"], "elected": 0, "busy": 0},
            MEMBER2: {"route": "b", "status": ["Init", "HcFl"], "flags": ["health_check_failed"],
                      "elected": 0, "busy": 0},
        },
    }


def test_member_back_in_service_has_no_flags() -> None:
    page = replaced(PAGE, MEMBER1_STATUS, "<td>Init Ok </td><td>0</td><td>0</td>")
    member = balancer_manager_state(page, "web")["members"][MEMBER1]
    assert (member["status"], member["flags"]) == (["Init", "Ok"], [])


def test_drained_member_is_flagged() -> None:
    page = replaced(PAGE, MEMBER1_STATUS, "<td>Init Ok </td><td>0</td><td>0</td>")
    page = replaced(page, "<td>Init Ok </td>", "<td>Init Drn Ok </td>")
    members = balancer_manager_state(page, "web")["members"]
    assert members[MEMBER1]["status"] == ["Init", "Drn", "Ok"]
    assert members[MEMBER1]["flags"] == ["drain"]
    assert members[MEMBER2]["flags"] == ["health_check_failed"]


def test_several_flags_are_sorted_and_unknown_words_ignored() -> None:
    page = replaced(PAGE, MEMBER2_STATUS, "<td>Init Stop Dis Err HcFl Drn Stby </td><td>0</td><td>0</td>")
    member = balancer_manager_state(page, "web")["members"][MEMBER2]
    assert member["flags"] == ["disabled", "drain", "error", "health_check_failed", "stopped"]
    assert member["status"] == ["Init", "Stop", "Dis", "Err", "HcFl", "Drn", "Stby"]


def test_elected_and_busy_are_ints() -> None:
    page = replaced(PAGE, MEMBER1_STATUS, "<td>Init Drn Ok </td><td>1234</td><td>7</td>")
    members = balancer_manager_state(page, "web")["members"]
    assert (members[MEMBER1]["elected"], members[MEMBER1]["busy"]) == (1234, 7)
    assert (members[MEMBER2]["elected"], members[MEMBER2]["busy"]) == (0, 0)


def test_empty_route() -> None:
    page = replaced(PAGE, f"{MEMBER2}</a></td><td>b</td>", f"{MEMBER2}</a></td><td></td>")
    assert balancer_manager_state(page, "web")["members"][MEMBER2]["route"] == ""


def test_two_balancers_on_one_page_are_read_separately() -> None:
    web = section(PAGE)
    api_nonce = "11111111-2222-3333-4444-555555555555"
    api = (web.replace("b=web&amp;", "b=api&amp;").replace("balancer://web", "balancer://api")
           .replace(NONCE, api_nonce).replace("127.0.0.1:81", "127.0.0.3:83").replace("127.0.0.2:82", "127.0.0.4:84")
           .replace("Init Drn Ok ", "Init Ok ").replace("Init HcFl ", "Init Stop "))
    for page in (replaced(PAGE, web, web + "\n" + api), replaced(PAGE, web, api + "\n" + web)):
        assert balancer_manager_state(page, "web") == balancer_manager_state(PAGE, "web")
        assert balancer_manager_state(page, "api") == {
            "nonce": api_nonce,
            "members": {
                "http://127.0.0.3:83": {"route": "a", "status": ["Init", "Ok"], "flags": [], "elected": 0, "busy": 0},
                "http://127.0.0.4:84": {"route": "b", "status": ["Init", "Stop"], "flags": ["stopped"],
                                        "elected": 0, "busy": 0},
            },
        }


def test_balancer_name_must_match_exactly() -> None:
    page = replaced(PAGE, section(PAGE), section(PAGE).replace("b=web&amp;", "b=web2&amp;")
                    .replace("balancer://web", "balancer://web2"))
    assert balancer_manager_state(page, "web2")["nonce"] == NONCE
    with pytest.raises(AnsibleFilterError, match="balancer 'web' is not on the balancer-manager page"):
        balancer_manager_state(page, "web")


@pytest.mark.parametrize("name", ["api", "we", "balancer://web", "WEB"])
def test_unknown_balancer_is_named(name: str) -> None:
    with pytest.raises(AnsibleFilterError) as info:
        balancer_manager_state(PAGE, name)
    assert str(info.value.message) == (
        f"balancer_manager_state: balancer {name!r} is not on the balancer-manager page")


@pytest.mark.parametrize("page", ["", "<html><body><h1>Load Balancer Manager</h1></body></html>"])
def test_page_without_balancers(page: str) -> None:
    with pytest.raises(AnsibleFilterError, match="balancer 'web' is not on the balancer-manager page"):
        balancer_manager_state(page, "web")


def test_balancer_without_members() -> None:
    web = section(PAGE)
    rows_start = web.index("<tr>\n<td><a href")
    rows_end = web.index("</table>\n<hr />")
    page = replaced(PAGE, web, web[:rows_start] + web[rows_end:])
    assert balancer_manager_state(page, "web") == {"nonce": NONCE, "members": {}}


# --------------------------------------------------------------------------- balancer_member_busy


def test_busy_count_of_each_member() -> None:
    page = replaced(PAGE, MEMBER1_STATUS, "<td>Init Drn Ok </td><td>1234</td><td>7</td>")
    assert balancer_member_busy(page, "web", MEMBER1) == 7
    assert balancer_member_busy(page, "web", MEMBER2) == 0
    assert balancer_member_busy(PAGE, "web", MEMBER1) == 0


def test_busy_count_of_a_member_the_balancer_no_longer_lists_is_named() -> None:
    with pytest.raises(AnsibleFilterError) as info:
        balancer_member_busy(PAGE, "web", "http://127.0.0.9")
    assert str(info.value.message) == (
        "balancer_member_busy: 'http://127.0.0.9' is not a member of balancer 'web'")


def test_busy_count_of_an_unknown_balancer_is_named() -> None:
    with pytest.raises(AnsibleFilterError, match="balancer 'api' is not on the balancer-manager page"):
        balancer_member_busy(PAGE, "api", MEMBER1)


def test_filter_module_exposes_the_filters() -> None:
    assert FilterModule().filters() == {
        "balancer_member_url": balancer.balancer_member_url,
        "balancer_manager_state": balancer.balancer_manager_state,
        "balancer_member_busy": balancer.balancer_member_busy,
    }
