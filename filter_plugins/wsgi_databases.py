"""Filters that join the web servers' apps to their data services: which databases and Redis instances,
for whom, with what.

An app with `database` (wsgi_sites) gets a PostgreSQL database and an owner role of that name on the
host of the inventory group `databases`; an app with `redis` a Redis instance of its own on the host of the
group `redis`. The web servers know the apps; the service hosts know the passwords they generated. These
filters carry what each side needs across, so that neither role reads the other's variables: the playbooks
hand the service hosts their lists (wsgi_databases, wsgi_redis_instances) and the web servers the
connection settings (wsgi_database_secrets, wsgi_redis_secrets).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import quote

from ansible.errors import AnsibleFilterError

# TLS without a certificate check: the database host's certificate is self-signed until the HTTPS
# issue's certificates exist; the traffic is encrypted, the host is the one the inventory names.
SSL_MODE = "require"


def _apps_with(sites: Iterable[Mapping[str, Any]], field: str) -> list[Mapping[str, Any]]:
    """The apps of normalized sites that have `field` (database, redis)."""
    return _having([app for site in sites or [] for app in site.get("apps", [])], field)


def _having(apps: Iterable[Mapping[str, Any]], field: str) -> list[Mapping[str, Any]]:
    """The normalized apps that have `field` (database, redis)."""
    return [app for app in apps or [] if app.get(field)]


def _process_host_apps(hostvars: Mapping[str, Any], hosts: Iterable[str],
                       field: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Each process host (wsgi_process_hosts) with each of its apps that has `field`: the hosts that run an
    app's processes connect to its database and Redis as its web servers do."""
    for host in hosts or ():
        for app in _having((hostvars[host].get("wsgi_model") or {}).get("process_apps") or (), field):
            yield host, app


def _normalized(hostvars: Mapping[str, Any], host: str) -> list[Mapping[str, Any]]:
    """A web server's normalized sites, from the model the validation play builds on every web server."""
    model = hostvars[host].get("wsgi_model")
    if not isinstance(model, Mapping) or model.get("sites") is None:
        raise AnsibleFilterError(
            f"web server {host} has no wsgi_model: run playbooks/validate.yml first (site.yml does)")
    return model["sites"]


def _add_clients(entry: dict[str, Any], hostvars: Mapping[str, Any], host: str) -> None:
    """A host's addresses added to a database's or an instance's clients, each once."""
    entry["clients"].extend(a for a in _client_addresses(hostvars, host) if a not in entry["clients"])


def _password(passwords: Mapping[str, Any] | None, key: str, strict: bool, missing: str) -> str | None:
    """A password the service host published, as a string; missing, the error `missing` (strict) or None (a
    dry run, where the service host may not have made it yet)."""
    if key in (passwords or {}):
        return str(passwords[key])
    if strict:
        raise AnsibleFilterError(missing)
    return None


def wsgi_database_problems(hostvars: Mapping[str, Any], hosts: Iterable[str], database_hosts: Iterable[str],
                           backup_hosts: Iterable[str] = ()) -> str:
    """What is wrong with the web servers' databases as a whole, one line per problem; "" when nothing.

    Each host's wsgi_sites was checked on its own already (a database name once per host). Across hosts,
    an app's database is shared by every host with that app, so two different apps may not name the same
    database, a database needs a host in the `databases` group to live on, and one in the `backups` group
    (not the database host: a dead disk would take both) that keeps its continuous archive; an app with
    backup_state needs that backups host too.
    """
    database_hosts = list(database_hosts or [])
    backup_hosts = list(backup_hosts or [])
    problems: list[str] = []
    owners: dict[str, tuple[str, str]] = {}
    for host in hosts:
        for app in _apps_with(_normalized(hostvars, host), "database"):
            name = app["database"]["name"]
            where = f"web server {host}, app {app['name']!r}: field 'database'"
            if not database_hosts:
                problems.append(f"{where}: database {name!r} needs a host in the inventory group 'databases' "
                                f"(none there); allowed: no database, or a databases group with one host")
            if not backup_hosts:
                problems.append(f"{where}: database {name!r} needs a host in the inventory group 'backups' for its "
                                "continuous archive (none there); allowed: no database, or a backups group with one "
                                "host other than the database host")
            owner = owners.setdefault(name, (host, app["name"]))
            if owner[1] != app["name"]:
                problems.append(f"{where}: database {name!r} is also the database of app {owner[1]!r} on "
                                f"{owner[0]}; allowed: one app per database (hosts with the same app share it)")
        if not backup_hosts:
            problems += [f"web server {host}, app {app['name']!r}: field 'backup_state': the state directory needs a "
                         "host in the inventory group 'backups' (none there); allowed: backup_state false, or a "
                         "backups group with one host" for app in _apps_with(_normalized(hostvars, host), "backup_state")]
    if len(backup_hosts) > 1:
        problems.append(f"inventory group 'backups': {len(backup_hosts)} hosts ({', '.join(backup_hosts)}); allowed: "
                        "one backups host")
    if set(backup_hosts) & set(database_hosts):
        problems.append(f"inventory group 'backups': {', '.join(sorted(set(backup_hosts) & set(database_hosts)))} is "
                        "also the database host; allowed: a backups host of its own (a lost database host would take "
                        "its backups with it)")
    if len(database_hosts) > 1:
        problems.append(f"inventory group 'databases': {len(database_hosts)} hosts ({', '.join(database_hosts)}); "
                        "allowed: one database host (replication is not managed by these roles)")
    return "\n".join(problems)


def _client_addresses(hostvars: Mapping[str, Any], host: str) -> list[str]:
    """The addresses a host (web server or process host) connects from, as pg_hba.conf masks (one host each)."""
    facts = hostvars[host].get("ansible_facts") or {}
    addresses = []
    if (facts.get("default_ipv4") or {}).get("address"):
        addresses.append(f"{facts['default_ipv4']['address']}/32")
    if (facts.get("default_ipv6") or {}).get("address"):
        addresses.append(f"{facts['default_ipv6']['address']}/128")
    if not addresses:
        raise AnsibleFilterError(f"host {host} has no default_ipv4 or default_ipv6 address in its facts: "
                                 "gather its facts (network subset) first")
    return addresses


def _given_password(hostvars: Mapping[str, Any], host: str, app_name: str, field: str = "database") -> str | None:
    """The password the user gave for an app's database or redis, which the validation keeps apart from the
    model (wsgi_database_given_passwords, wsgi_redis_given_passwords: app name to password), if any."""
    password = (hostvars[host].get(f"wsgi_{field}_given_passwords") or {}).get(app_name)
    return None if password is None else str(password)


def wsgi_databases(hostvars: Mapping[str, Any], hosts: Iterable[str],
                   process_hosts: Iterable[str] = ()) -> list[dict[str, Any]]:
    """The databases the web servers' apps need: name, password (None: generate), client addresses.

    For the postgresql role's postgresql_databases. The result holds given passwords: use it in tasks
    whose output is hidden. Hosts with the same app share its database, so its clients are all of them,
    and the process_hosts that run its processes (wsgi_process_hosts).
    """
    databases: dict[str, dict[str, Any]] = {}
    for host in hosts:
        for app in _apps_with(_normalized(hostvars, host), "database"):
            name = app["database"]["name"]
            entry = databases.setdefault(name, {"name": name, "password": None, "clients": []})
            password = _given_password(hostvars, host, app["name"]) if app["database"]["password_given"] else None
            if entry["clients"] and password != entry["password"]:
                raise AnsibleFilterError(f"database {name!r}: the web servers give it different passwords (or some "
                                         f"none); allowed: the same database.password on every host, or none")
            entry["password"] = password
            _add_clients(entry, hostvars, host)
    for host, app in _process_host_apps(hostvars, process_hosts, "database"):
        _add_clients(databases[app["database"]["name"]], hostvars, host)
    return sorted(databases.values(), key=lambda entry: entry["name"])


def wsgi_database_secrets(apps: Iterable[Mapping[str, Any]], passwords: Mapping[str, Any], host: str,
                          port: Any = 5432, strict: bool = True) -> dict[str, dict[str, str]]:
    """The environment of each of these apps (normalized) with a database, app name to name to value: to
    add to its secrets.

    passwords maps database names to passwords, as the postgresql role publishes them on the database host
    (postgresql_role_passwords). DATABASE_URL is libpq's URI form (what Django's dj-database-url and
    SQLAlchemy read); the PG* variables are what libpq, psql and psycopg read without any setting.
    A password missing is an error, except with strict false (a dry run, where the database host may not
    have made it yet): then that app gets no database settings.
    """
    secrets: dict[str, dict[str, str]] = {}
    for app in _having(apps, "database"):
        name = app["database"]["name"]
        password = _password(passwords, name, strict,
                             f"app {app['name']!r}: no password for its database {name!r} on the database host "
                             f"{host}: run the databases play first (site.yml does; playbooks/databases.yml alone)")
        if password is None:
            continue
        secrets[app["name"]] = {
            "DATABASE_URL": f"postgresql://{name}:{quote(password, safe='')}@{host}:{port}/{name}?sslmode={SSL_MODE}",
            "PGHOST": str(host),
            "PGPORT": str(port),
            "PGDATABASE": name,
            "PGUSER": name,
            "PGPASSWORD": password,
            "PGSSLMODE": SSL_MODE,
        }
    return secrets


def wsgi_redis_problems(hostvars: Mapping[str, Any], hosts: Iterable[str], redis_hosts: Iterable[str]) -> str:
    """What is wrong with the web servers' Redis instances as a whole, one line per problem; "" when nothing.

    Each host's apps were checked on their own. Across hosts: an app's Redis is one instance, so its settings
    (and whether a password is given) are the same on every host with the app; each instance has a port of
    its own on the redis host; and there is a redis host for it to live on.
    """
    redis_hosts = list(redis_hosts or [])
    problems: list[str] = []
    settings: dict[str, tuple[str, Mapping[str, Any]]] = {}
    ports: dict[int, str] = {}
    for host in hosts:
        for app in _apps_with(_normalized(hostvars, host), "redis"):
            where = f"web server {host}, app {app['name']!r}: field 'redis'"
            if not redis_hosts:
                problems.append(f"{where}: needs a host in the inventory group 'redis' (none there); allowed: no "
                                "redis, or a redis group with one host")
            first = settings.setdefault(app["name"], (host, app["redis"]))
            if first[1] != app["redis"]:
                problems.append(f"{where}: {dict(app['redis'])} differs from {dict(first[1])} on {first[0]}; "
                                "allowed: the same redis settings on every host with the app")
            port = app["redis"]["port"]
            if ports.setdefault(port, app["name"]) != app["name"]:
                problems.append(f"{where}: port {port} is also the port of app {ports[port]!r}'s Redis; allowed: a "
                                "port of the app's own (set redis.port on one of them)")
    if len(redis_hosts) > 1:
        problems.append(f"inventory group 'redis': {len(redis_hosts)} hosts ({', '.join(redis_hosts)}); allowed: "
                        "one redis host (replication is not managed by these roles)")
    return "\n".join(dict.fromkeys(problems))


def wsgi_redis_instances(hostvars: Mapping[str, Any], hosts: Iterable[str],
                         process_hosts: Iterable[str] = ()) -> list[dict[str, Any]]:
    """The Redis instances the web servers' apps need, one per app: name, port, maxmemory, policy, password
    (None: generate) and the client addresses (every host with the app, and the process_hosts that run its
    processes), for the redis role's redis_instances. The result holds given passwords: use it in tasks
    whose output is hidden."""
    instances: dict[str, dict[str, Any]] = {}
    for host in hosts:
        for app in _apps_with(_normalized(hostvars, host), "redis"):
            redis = app["redis"]
            entry = instances.setdefault(app["name"], {
                "name": app["name"], "port": redis["port"], "maxmemory": redis["maxmemory"],
                "policy": redis["policy"], "password": None, "clients": []})
            if redis["password_given"]:
                entry["password"] = _given_password(hostvars, host, app["name"], "redis")
            _add_clients(entry, hostvars, host)
    for host, app in _process_host_apps(hostvars, process_hosts, "redis"):
        _add_clients(instances[app["name"]], hostvars, host)
    return sorted(instances.values(), key=lambda entry: entry["name"])


def wsgi_redis_secrets(apps: Iterable[Mapping[str, Any]], passwords: Mapping[str, Any], host: str,
                       strict: bool = True) -> dict[str, dict[str, str]]:
    """REDIS_URL of each of these apps (normalized) with redis, app name to {REDIS_URL: ...}: to add to its
    secrets.

    passwords maps app names to passwords, as the redis role publishes them on the redis host
    (redis_passwords). The URL is rediss:// (TLS) with the certificate unchecked, as with the database
    (the redis host's certificate is self-signed); redis-py, Celery and RQ read it as it is. A password
    missing is an error, except with strict false (a dry run): then that app gets no REDIS_URL.
    """
    secrets: dict[str, dict[str, str]] = {}
    for app in _having(apps, "redis"):
        password = _password(passwords, app["name"], strict,
                             f"app {app['name']!r}: no password for its Redis on the redis host {host}: run the "
                             "redis play first (site.yml does; playbooks/redis.yml alone)")
        if password is None:
            continue
        secrets[app["name"]] = {
            "REDIS_URL": f"rediss://:{quote(password, safe='')}@{host}:{app['redis']['port']}/0?ssl_cert_reqs=none"}
    return secrets


class FilterModule:
    """Ansible entry point: the filters that connect the apps to their databases."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        """Map filter names to functions."""
        return {
            "wsgi_database_problems": wsgi_database_problems,
            "wsgi_databases": wsgi_databases,
            "wsgi_database_secrets": wsgi_database_secrets,
            "wsgi_redis_problems": wsgi_redis_problems,
            "wsgi_redis_instances": wsgi_redis_instances,
            "wsgi_redis_secrets": wsgi_redis_secrets,
        }
