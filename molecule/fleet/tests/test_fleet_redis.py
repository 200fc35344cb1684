"""Redis for the fleet's apps: an instance per app on the redis host (fleet-db), each isolated from the
others, persistent, TLS only, reachable from its app's web servers only, with a password that is in no
output, process list or file another user can read; every app gets its REDIS_URL in every mode.

The catalog app (proxy mode) gives its password (as from ansible-vault); board's (daemon) and
catalog-embedded's (embedded) are generated on the redis host.
"""

from __future__ import annotations

import hashlib
import shlex

import pytest
from conftest import inventory_host, lab_of

testinfra_hosts = ["fleet-balancer"]

WEBS = ("fleet-web1", "fleet-web2", "fleet-web3")
APPS = {"board": ("daemon", "/environment", "board.example.com"),
        "catalog": ("proxy", "/catalog/environment", "www.example.com"),
        "catalog-embedded": ("embedded", "/catalog-embedded/environment", "www.example.com")}
GIVEN = {"catalog": "fleet-catalog-redis-password-0123456789"}


@pytest.fixture(scope="module")
def redis():
    return inventory_host("fleet-db")


def password(redis, app: str) -> str:
    return redis.check_output(f"cat /etc/wsgi-hosting/redis/{app}.password")


def port(redis, app: str) -> int:
    conf = redis.check_output(f"cat /etc/redis/redis-wsgi-{app}.conf")
    (line,) = [line for line in conf.splitlines() if line.startswith("tls-port ")]
    return int(line.split()[1])


def cli(redis, app: str, *command: str, as_app: str | None = None) -> str:
    """redis-cli on the redis host against app's instance (TLS), with the password of as_app (default app)
    from the environment (REDISCLI_AUTH), never on a command line."""
    secret = password(redis, as_app or app)
    done = redis.run(f"REDISCLI_AUTH={shlex.quote(secret)} redis-cli --tls --insecure -p {port(redis, app)} "
                     + " ".join(shlex.quote(word) for word in command))
    return (done.stdout + done.stderr).strip()


def test_each_app_has_an_instance_of_its_own_with_its_settings(redis):
    for app in APPS:
        assert redis.service(f"redis-server@wsgi-{app}").is_running, app
        assert redis.service(f"redis-server@wsgi-{app}").is_enabled, app
    info = cli(redis, "catalog", "info", "memory")
    assert "maxmemory:33554432" in info and "maxmemory_policy:allkeys-lru" in info, info
    assert "maxmemory_policy:noeviction" in cli(redis, "board", "info", "memory")
    assert password(redis, "catalog") == GIVEN["catalog"]
    assert len(password(redis, "board")) >= 40 and password(redis, "board") != password(redis, "catalog-embedded")
    assert not redis.service("redis-server").is_running  # Debian's own instance, unused


def test_an_app_cannot_read_or_write_another_apps_keys(redis):
    assert cli(redis, "board", "set", "isolation", "board's") == "OK"
    assert cli(redis, "catalog", "set", "isolation", "catalog's") == "OK"
    assert cli(redis, "board", "get", "isolation") == "board's"
    # catalog's password does not open board's instance: neither a read nor a write gets through.
    for command in (("get", "isolation"), ("set", "isolation", "catalog's")):
        denied = cli(redis, "board", *command, as_app="catalog")
        assert "WRONGPASS" in denied or "NOAUTH" in denied, denied
    assert cli(redis, "board", "get", "isolation") == "board's"
    # Nor can an app reconfigure its own server (CONFIG SET dir would write files as redis).
    assert "NOPERM" in cli(redis, "board", "config", "set", "dir", "/tmp")


def test_the_data_survives_a_restart_of_the_server(redis):
    assert cli(redis, "catalog-embedded", "set", "kept", "across restarts") == "OK"
    redis.run_test("systemctl restart redis-server@wsgi-catalog-embedded")
    assert cli(redis, "catalog-embedded", "get", "kept") == "across restarts"


def test_only_tls_and_only_the_apps_hosts_get_in(redis):
    probe = ("import socket, ssl, sys; s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=4); "
             "c = ssl.create_default_context(); c.check_hostname = False; c.verify_mode = ssl.CERT_NONE; "
             "t = c.wrap_socket(s); t.sendall(b'PING\\r\\n'); print(t.recv(100).decode().strip(), t.version())")
    board = port(redis, "board")
    for name in WEBS:
        answer = inventory_host(name).check_output(f"python3 -c {shlex.quote(probe)} fleet-db {board}")
        assert answer.startswith("-NOAUTH") and answer.split()[-1] in ("TLSv1.2", "TLSv1.3"), (name, answer)
    # The balancer runs no app: its packets are dropped, it cannot even connect.
    refused = inventory_host("fleet-balancer").run(f"python3 -c {shlex.quote(probe)} fleet-db {board}")
    assert refused.rc != 0 and ("timed out" in refused.stderr or "refused" in refused.stderr), refused.stderr
    # Plain text gets no answer from the TLS port.
    plain_probe = ("import socket, sys; s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=4); "
                   "s.sendall(b'PING\\r\\n'); print(s.recv(100))")
    plain = inventory_host("fleet-web1").run(f"python3 -c {shlex.quote(plain_probe)} fleet-db {board}")
    assert "+PONG" not in plain.stdout and "NOAUTH" not in plain.stdout, plain.stdout


def test_every_mode_gets_its_redis_url(redis):
    for app, (mode, path, server_name) in APPS.items():
        url = f"rediss://:{password(redis, app)}@fleet-db:{port(redis, app)}/0?ssl_cert_reqs=none"
        for name in WEBS:
            seen = lab_of(inventory_host(name)).request(path, server_name).json()
            assert seen["redis_url_sha256"] == hashlib.sha256(url.encode()).hexdigest(), (app, mode, name)


def test_no_password_in_a_process_list_or_a_file_others_can_read(redis):
    secrets = [password(redis, app) for app in APPS]
    for node in (redis, *(inventory_host(name) for name in WEBS)):
        processes = node.check_output("ps -eww -o args")
        assert not [secret for secret in secrets if secret in processes]
        for secret in secrets:
            found = node.run(f"grep -rlF -- {shlex.quote(secret)} /etc /var/lib /usr/local /run /tmp 2>/dev/null")
            for path in found.stdout.split():
                mode = int(node.check_output(f"stat -c %a {shlex.quote(path)}"), 8)
                assert mode & 0o007 == 0, (node, path, oct(mode))
