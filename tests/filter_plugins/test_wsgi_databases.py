"""The filters that carry the apps' databases between the web servers and the database host."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

import pytest
from ansible.errors import AnsibleFilterError
from wsgi_databases import (
    wsgi_database_problems,
    wsgi_database_secrets,
    wsgi_databases,
    wsgi_redis_instances,
    wsgi_redis_problems,
    wsgi_redis_secrets,
)


def web(address: str, *apps: tuple[str, str | None], passwords: dict[str, str] | None = None) -> dict:
    """A web server's hostvars: the model of its sites with apps (name, database), the database passwords
    given (kept apart by the validation), its facts."""
    passwords = passwords or {}
    normalized = [{"apps": [{"name": name, "database": {"name": db, "password_given": name in passwords}}
                            if db else {"name": name, "database": None} for name, db in apps]}]
    return {"wsgi_model": {"sites": normalized}, "wsgi_database_given_passwords": dict(passwords),
            "ansible_facts": {"default_ipv4": {"address": address}}}


def test_hosts_with_one_app_share_its_database_and_are_its_clients():
    hostvars = {"web1": web("10.0.0.1", ("shop", "shop"), ("blog", None)),
                "web2": web("10.0.0.2", ("shop", "shop"), ("news", "news"))}
    assert wsgi_databases(hostvars, ["web1", "web2"]) == [
        {"name": "news", "password": None, "clients": ["10.0.0.2/32"]},
        {"name": "shop", "password": None, "clients": ["10.0.0.1/32", "10.0.0.2/32"]},
    ]


def process_host(address: str, *apps: dict) -> dict:
    """A host that runs apps' processes only (wsgi_process_hosts' model): no sites, no given passwords."""
    return {"wsgi_model": {"sites": [], "web_server": False, "process_apps": list(apps)},
            "ansible_facts": {"default_ipv4": {"address": address}}}


def test_the_hosts_of_an_apps_processes_are_clients_of_its_database_and_redis():
    hostvars = {"web1": {**web("10.0.0.1", ("shop", "shop"), passwords={"shop": "s3cret"}),
                         **{key: value for key, value in redis_web("10.0.0.1", ("shop", SHOP_REDIS)).items()
                            if key == "wsgi_redis_given_passwords"}},
                "worker": process_host("10.0.0.9", {"name": "shop", "database": {"name": "shop", "password_given": True},
                                                    "redis": SHOP_REDIS})}
    hostvars["web1"]["wsgi_model"]["sites"][0]["apps"][0]["redis"] = SHOP_REDIS
    # The given password comes from the web server; the process host only adds its address.
    assert wsgi_databases(hostvars, ["web1"], ["worker"]) == [
        {"name": "shop", "password": "s3cret", "clients": ["10.0.0.1/32", "10.0.0.9/32"]}]
    (instance,) = wsgi_redis_instances(hostvars, ["web1"], ["worker"])
    assert instance["clients"] == ["10.0.0.1/32", "10.0.0.9/32"]
    assert wsgi_databases(hostvars, ["web1"])[0]["clients"] == ["10.0.0.1/32"]


def test_a_given_password_is_passed_on_and_must_agree_across_hosts():
    hostvars = {"web1": web("10.0.0.1", ("shop", "shop"), passwords={"shop": "s3cret"}),
                "web2": web("10.0.0.2", ("shop", "shop"), passwords={"shop": "s3cret"})}
    assert wsgi_databases(hostvars, ["web1", "web2"])[0]["password"] == "s3cret"
    hostvars["web2"] = web("10.0.0.2", ("shop", "shop"), passwords={"shop": "other"})
    with pytest.raises(AnsibleFilterError, match="different passwords") as error:
        wsgi_databases(hostvars, ["web1", "web2"])
    assert "s3cret" not in str(error.value) and "other" not in str(error.value)


def test_a_web_server_without_an_address_or_validation_is_an_error():
    hostvars = {"web1": {**web("10.0.0.1", ("shop", "shop")), "ansible_facts": {}}}
    with pytest.raises(AnsibleFilterError, match="web1 has no default_ipv4"):
        wsgi_databases(hostvars, ["web1"])
    with pytest.raises(AnsibleFilterError, match="validate.yml first"):
        wsgi_databases({"web1": {}}, ["web1"])


def test_problems_name_the_host_and_app():
    hostvars = {"web1": web("10.0.0.1", ("shop", "shop")), "web2": web("10.0.0.2", ("blog", "shop"))}
    assert wsgi_database_problems(hostvars, ["web1"], ["db1"], ["b1"]) == ""
    problems = wsgi_database_problems(hostvars, ["web1", "web2"], ["db1"], ["b1"]).splitlines()
    assert problems == [("web server web2, app 'blog': field 'database': database 'shop' is also the database of "
                        "app 'shop' on web1; allowed: one app per database (hosts with the same app share it)")]
    missing = wsgi_database_problems(hostvars, ["web1"], [], ["b1"])
    assert "web server web1, app 'shop'" in missing and "inventory group 'databases'" in missing
    assert "one database host" in wsgi_database_problems(hostvars, ["web1"], ["db1", "db2"], ["b1"])
    assert wsgi_database_problems({"web1": web("10.0.0.1", ("blog", None))}, ["web1"], []) == ""


def test_a_database_needs_a_backups_host_of_its_own():
    hostvars = {"web1": web("10.0.0.1", ("shop", "shop"))}
    (missing,) = wsgi_database_problems(hostvars, ["web1"], ["db1"]).splitlines()
    assert missing == ("web server web1, app 'shop': field 'database': database 'shop' needs a host in the inventory "
                       "group 'backups' for its continuous archive (none there); allowed: no database, or a backups "
                       "group with one host other than the database host")
    (same,) = wsgi_database_problems(hostvars, ["web1"], ["db1"], ["db1"]).splitlines()
    assert same.startswith("inventory group 'backups': db1 is also the database host; allowed: a backups host of its own")
    assert "one backups host" in wsgi_database_problems(hostvars, ["web1"], ["db1"], ["b1", "b2"])


def test_secrets_give_a_url_and_libpq_variables():
    apps = web("10.0.0.1", ("shop", "shop"), ("blog", None))["wsgi_model"]["sites"][0]["apps"]
    secrets = wsgi_database_secrets(apps, {"shop": "p@ss/w:rd"}, "db.example.com", 5433)
    assert set(secrets) == {"shop"}
    shop = secrets["shop"]
    assert {k: v for k, v in shop.items() if k != "DATABASE_URL"} == {
        "PGHOST": "db.example.com", "PGPORT": "5433", "PGDATABASE": "shop", "PGUSER": "shop",
        "PGPASSWORD": "p@ss/w:rd", "PGSSLMODE": "require"}
    url = urlsplit(shop["DATABASE_URL"])
    assert (url.scheme, url.hostname, url.port, url.path, url.query) == (
        "postgresql", "db.example.com", 5433, "/shop", "sslmode=require")
    assert (unquote(url.username), unquote(url.password)) == ("shop", "p@ss/w:rd")


def test_a_missing_password_is_an_error_except_in_a_dry_run():
    apps = web("10.0.0.1", ("shop", "shop"))["wsgi_model"]["sites"][0]["apps"]
    with pytest.raises(AnsibleFilterError, match="app 'shop': no password for its database 'shop'"):
        wsgi_database_secrets(apps, {}, "db")
    assert wsgi_database_secrets(apps, {}, "db", strict=False) == {}


# --------------------------------------------------------------------------- redis


def redis_web(address: str, *apps: tuple[str, dict | None], passwords: dict[str, str] | None = None) -> dict:
    """A web server's hostvars with apps (name, normalized redis settings or None)."""
    return {"wsgi_model": {"sites": [{"apps": [{"name": name, "redis": redis} for name, redis in apps]}]},
            "wsgi_redis_given_passwords": dict(passwords or {}),
            "ansible_facts": {"default_ipv4": {"address": address}}}


SHOP_REDIS = {"maxmemory": "64mb", "policy": "noeviction", "port": 16400, "password_given": False}
BLOG_REDIS = {"maxmemory": "32mb", "policy": "allkeys-lru", "port": 16401, "password_given": True}


def test_each_app_gets_one_redis_instance_whose_clients_are_its_hosts():
    hostvars = {"web1": redis_web("10.0.0.1", ("shop", SHOP_REDIS), ("plain", None)),
                "web2": redis_web("10.0.0.2", ("shop", SHOP_REDIS), ("blog", BLOG_REDIS), passwords={"blog": "b10g"})}
    assert wsgi_redis_instances(hostvars, ["web1", "web2"]) == [
        {"name": "blog", "port": 16401, "maxmemory": "32mb", "policy": "allkeys-lru", "password": "b10g",
         "clients": ["10.0.0.2/32"]},
        {"name": "shop", "port": 16400, "maxmemory": "64mb", "policy": "noeviction", "password": None,
         "clients": ["10.0.0.1/32", "10.0.0.2/32"]},
    ]
    assert wsgi_redis_problems(hostvars, ["web1", "web2"], ["cache"]) == ""


def test_redis_problems_name_the_host_app_and_what_is_allowed():
    hostvars = {"web1": redis_web("10.0.0.1", ("shop", SHOP_REDIS)),
                "web2": redis_web("10.0.0.2", ("shop", {**SHOP_REDIS, "maxmemory": "1gb"}),
                                  ("blog", {**BLOG_REDIS, "port": 16400}))}
    problems = wsgi_redis_problems(hostvars, ["web1", "web2"], []).splitlines()
    assert problems[0].startswith("web server web1, app 'shop': field 'redis': needs a host in the inventory group "
                                  "'redis' (none there)")
    assert any("web server web2, app 'shop'" in line and "differs from" in line
               and "the same redis settings on every host" in line for line in problems), problems
    assert any("web server web2, app 'blog'" in line and "port 16400 is also the port of app 'shop'" in line
               and "set redis.port on one of them" in line for line in problems), problems
    assert "one redis host" in wsgi_redis_problems(hostvars, ["web1"], ["r1", "r2"])


def test_redis_url_is_tls_with_the_password_quoted():
    apps = [{"name": "shop", "redis": SHOP_REDIS}, {"name": "plain", "redis": None}]
    url = wsgi_redis_secrets(apps, {"shop": "p@ss/w:rd"}, "cache")["shop"]["REDIS_URL"]
    assert url == "rediss://:p%40ss%2Fw%3Ard@cache:16400/0?ssl_cert_reqs=none"
    assert unquote(urlsplit(url).password) == "p@ss/w:rd"
    assert set(wsgi_redis_secrets(apps, {"shop": "x"}, "cache")) == {"shop"}


def test_a_missing_redis_password_is_an_error_except_in_a_dry_run():
    apps = [{"name": "shop", "redis": SHOP_REDIS}]
    with pytest.raises(AnsibleFilterError, match="run the redis play first"):
        wsgi_redis_secrets(apps, {}, "cache")
    assert wsgi_redis_secrets(apps, {}, "cache", strict=False) == {}
