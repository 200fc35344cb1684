"""The postgresql role's decisions: memory from RAM, values for postgresql.conf, the access rules."""

from __future__ import annotations

from pathlib import Path

import postgresql as postgresql_module
import pytest
import wsgi_sites
from ansible.errors import AnsibleFilterError
from ansible_collections.wsgi_hosting.debian.plugins.module_utils.shared_rules import (
    DATABASE_NAME_RE,
)
from postgresql import (
    postgresql_conf_value,
    postgresql_database_name,
    postgresql_database_problems,
    postgresql_hba_rules,
    postgresql_memory_settings,
)


def test_memory_follows_the_host_within_bounds():
    assert postgresql_memory_settings(4096, 100) == {
        "shared_buffers": "1024MB", "effective_cache_size": "3072MB",
        "maintenance_work_mem": "256MB", "work_mem": "10MB"}
    big = postgresql_memory_settings("65536", 100)
    assert big["shared_buffers"] == "8192MB" and big["maintenance_work_mem"] == "2048MB"
    assert big["work_mem"] == "191MB"  # (65536 - 8192) // (100 * 3)
    small = postgresql_memory_settings(512, 100)
    assert small["shared_buffers"] == "128MB" and small["work_mem"] == "1MB"


@pytest.mark.parametrize("memory", [100, "lots", None])
def test_memory_that_is_not_a_real_amount_is_an_error(memory):
    with pytest.raises(AnsibleFilterError, match="postgresql_memory"):
        postgresql_memory_settings(memory)


def test_conf_values_are_quoted_unless_numbers_or_booleans():
    assert postgresql_conf_value(5432) == "5432"
    assert postgresql_conf_value(True) == "on"
    assert postgresql_conf_value("*") == "'*'"
    assert postgresql_conf_value("it's") == "'it''s'"
    assert postgresql_conf_value("1024MB") == "'1024MB'"


def test_each_role_reaches_its_own_database_from_its_clients_over_tls_only():
    rules = postgresql_hba_rules([{"name": "shop", "clients": ["10.0.0.1/32", "10.0.0.2/32"]},
                                  {"name": "blog", "clients": []}])
    assert rules == [
        {"type": "hostssl", "database": "shop", "user": "shop", "address": "10.0.0.1/32", "method": "scram-sha-256"},
        {"type": "hostssl", "database": "shop", "user": "shop", "address": "10.0.0.2/32", "method": "scram-sha-256"},
    ]


def test_database_problems_name_the_entry_and_never_the_password():
    good = [{"name": "shop", "password": None, "clients": ["10.0.0.1/32"]},
            {"name": "blog", "password": "s3cret-value", "clients": ["fd00::1/128"]}]
    assert postgresql_database_problems(good) == ""
    bad = [{"name": "Shop", "password": None, "clients": []},
           {"name": "postgres", "clients": []},
           {"name": "blog", "password": 12345, "clients": ["10.0.0.1"]},
           {"name": "blog", "password": "s3cret-value", "clients": ["10.0.0.1/24"]},
           {"name": "news", "owner": "x", "clients": []}]
    problems = postgresql_database_problems(bad).splitlines()
    assert problems[0].startswith("postgresql_databases[0]: name 'Shop'")
    assert problems[1].startswith("postgresql_databases[1]: name 'postgres'")
    assert problems[2].startswith("postgresql_databases[2]: password (hidden)")
    assert "postgresql_databases[3]: name 'blog' twice" in problems[3]
    assert problems[4].startswith("postgresql_databases[3]: client '10.0.0.1/24'")  # host bits set
    assert problems[5].startswith("postgresql_databases[4] has ['clients', 'name', 'owner']")
    assert len(problems) == 6
    assert "s3cret-value" not in "\n".join(problems) and "12345" not in "\n".join(problems)
    assert "allowed: a list" in postgresql_database_problems({"name": "shop"})


@pytest.mark.parametrize("name", ["shop", "_x", "a" * 63, "shop_2"])
def test_database_names_that_are_plain_identifiers_are_allowed(name):
    assert postgresql_database_name(name)


@pytest.mark.parametrize("name", ["", "Shop", "2shop", "a" * 64, "pg_shop", "postgres", "template1", "shop-db",
                                  "shop;drop", None, 7, ["shop"]])
def test_other_database_names_are_not(name):
    assert not postgresql_database_name(name)


def test_every_copy_of_the_database_name_rule_is_the_same():
    """The web servers' side (wsgi_sites) and the database host's side (postgresql) use the one rule of
    module_utils, and the scripts that run on the database host check its pattern."""
    assert wsgi_sites.is_database_name is postgresql_module.is_database_name
    templates = Path(__file__).resolve().parents[2] / "roles" / "postgresql" / "templates"
    for script in ("wsgi-postgresql-backup.j2", "wsgi-postgresql-restore.j2"):
        assert f"=~ {DATABASE_NAME_RE.pattern} ]]" in (templates / script).read_text(), script
