"""The redis role's filters: the check of redis_instances and each instance's files."""

from __future__ import annotations

import hashlib

from redis_instances import (
    FilterModule,
    redis_changes,
    redis_files,
    redis_instance_problems,
    redis_unit,
)

PATHS = {"conf_dir": "/etc/redis", "data_dir": "/var/lib/redis", "systemd_dir": "/etc/systemd/system",
         "tls_key": "/etc/redis/wsgi-tls/redis.key", "tls_certificate": "/etc/redis/wsgi-tls/redis.crt",
         "user": "redis", "group": "redis"}
SHOP = {"name": "shop", "port": 16400, "maxmemory": "64mb", "policy": "noeviction", "password": None,
        "clients": ["10.0.0.1/32", "10.0.0.2/32"]}


def by_path(files: list[dict]) -> dict[str, dict]:
    return {entry["path"]: entry for entry in files}


def test_valid_instances_have_no_problems():
    assert redis_instance_problems([SHOP, {**SHOP, "name": "blog", "port": 16401, "password": "s3cret"}]) == ""
    assert redis_instance_problems([]) == ""


def test_problems_name_the_entry_and_never_the_password():
    problems = redis_instance_problems([
        {**SHOP, "name": "Shop!"},
        {**SHOP, "name": "blog", "port": 16400, "maxmemory": "lots", "policy": "lru", "password": "",
         "clients": ["10.0.0.300/32"]},
        {"name": "x"},
        {**SHOP, "name": "news", "port": 80},
    ]).splitlines()
    assert problems[0].startswith("redis_instances[0]: name 'Shop!'")
    assert any(line.startswith("redis_instances[1]: port 16400") and "each once" in line for line in problems)
    assert "redis_instances[1]: maxmemory 'lots'; allowed: a size such as 256mb" in problems
    assert any(line.startswith("redis_instances[1]: policy 'lru'") for line in problems)
    assert any("password (hidden)" in line for line in problems)
    assert any("client '10.0.0.300/32'" in line for line in problems)
    assert any(line.startswith("redis_instances[2] has ['name']") for line in problems)
    assert any(line.startswith("redis_instances[3]: port 80") for line in problems)
    assert redis_instance_problems("shop").startswith("redis_instances is a str")


def test_each_instance_is_tls_only_persistent_and_limited():
    files = by_path(redis_files([SHOP], {"shop": "pw"}, PATHS))
    conf = files["/etc/redis/redis-wsgi-shop.conf"]
    assert (conf["owner"], conf["group"], conf["mode"]) == ("root", "redis", "0640")
    lines = conf["content"].splitlines()
    for line in ("port 0", "tls-port 16400", "tls-key-file /run/redis-wsgi-shop/tls.key", "appendonly yes",
                 "maxmemory 64mb", "maxmemory-policy noeviction", "dir /var/lib/redis/wsgi-shop",
                 "aclfile /etc/redis/wsgi-shop.acl", 'tls-protocols "TLSv1.2 TLSv1.3"', "supervised systemd"):
        assert line in lines, line
    assert "pw" not in conf["content"].replace("pidfile", "")
    data = files["/var/lib/redis/wsgi-shop"]
    assert (data["state"], data["owner"], data["mode"]) == ("directory", "redis", "0750")


def test_the_password_is_kept_as_its_digest_with_admin_commands_denied():
    acl = by_path(redis_files([SHOP], {"shop": "pw"}, PATHS))["/etc/redis/wsgi-shop.acl"]
    digest = hashlib.sha256(b"pw").hexdigest()
    assert acl["content"] == f"user default on #{digest} ~* &* +@all -@admin\n"
    assert (acl["mode"], acl["diff"]) == ("0640", False)
    # A dry run before the password exists writes no ACL file (the instance would have no password).
    assert "/etc/redis/wsgi-shop.acl" not in by_path(redis_files([SHOP], {}, PATHS))


def test_the_drop_in_lets_in_the_clients_only_and_copies_the_key_for_redis():
    files = by_path(redis_files([SHOP], {"shop": "pw"}, PATHS, private_users=False))
    drop_in = files["/etc/systemd/system/redis-server@wsgi-shop.service.d/wsgi-hosting.conf"]["content"]
    lines = drop_in.splitlines()
    assert "IPAddressDeny=any" in lines
    assert "IPAddressAllow=localhost 10.0.0.1/32 10.0.0.2/32" in lines
    assert "ExecStartPre=+/usr/bin/install -o redis -g redis -m 0600 /etc/redis/wsgi-tls/redis.key /run/redis-%i/tls.key" in lines
    assert "PrivateUsers=false" in lines
    kept = by_path(redis_files([SHOP], {"shop": "pw"}, PATHS))
    assert "PrivateUsers" not in kept["/etc/systemd/system/redis-server@wsgi-shop.service.d/wsgi-hosting.conf"]["content"]
    # The drop-in's directory comes before it (wsgi_files applies entries in order).
    paths = [entry["path"] for entry in redis_files([SHOP], {"shop": "pw"}, PATHS)]
    assert paths.index("/etc/systemd/system/redis-server@wsgi-shop.service.d") < paths.index(
        "/etc/systemd/system/redis-server@wsgi-shop.service.d/wsgi-hosting.conf")


def test_only_instances_whose_settings_changed_restart_and_a_changed_drop_in_reloads():
    blog = {**SHOP, "name": "blog", "port": 16401}
    result = {"results": [
        {"path": "/var/lib/redis/wsgi-shop", "changed": True},
        {"path": "/etc/redis/redis-wsgi-shop.conf", "changed": False},
        {"path": "/etc/redis/wsgi-blog.acl", "changed": True},
        # New clients: daemon-reload lets them in, no restart cuts the others off.
        {"path": "/etc/systemd/system/redis-server@wsgi-shop.service.d/wsgi-hosting.conf", "changed": True},
    ]}
    assert redis_changes(result, [SHOP, blog], PATHS) == {"restart": ["redis-server@wsgi-blog.service"],
                                                          "reload": True}
    assert redis_changes({}, [SHOP], PATHS) == {"restart": [], "reload": False}
    # A new certificate restarts every instance, each once.
    assert redis_changes(result, [SHOP, blog], PATHS, certificate_changed=True)["restart"] == [
        "redis-server@wsgi-shop.service", "redis-server@wsgi-blog.service"]
    assert redis_unit("shop") == "redis-server@wsgi-shop.service"


def test_filter_module_exposes_the_filters():
    assert set(FilterModule().filters()) == {"redis_instance_problems", "redis_files", "redis_changes",
                                             "redis_unit"}
