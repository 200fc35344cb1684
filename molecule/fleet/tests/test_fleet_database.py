"""The fleet's PostgreSQL: one database the Django app shares on every web server, reachable by that app's
role from the web servers only, with a migration run once per release, and backups that restore.

Runs after test_fleet.py (file order), whose rollout released the Django app's version 2 with a new
migration. Requests go to the web hosts' and the balancer's published ports; database checks run on the
database host (fleet-db) and from the other hosts over the fleet's network.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import time
import urllib.parse
import uuid

import pytest
from conftest import Lab, inventory_host, lab_of

testinfra_hosts = ["fleet-balancer"]

BOARD = "board.example.com"
DATABASES = ("board", "catalog", "catalog_embedded")
BACKUP_DIR = "/var/backups/postgresql"
CREDENTIALS_DIR = "/etc/wsgi-hosting/postgresql"
# A PostgreSQL client in the standard library: TLS first (SSLRequest), then a startup message for a role
# and a database. It prints what the server answers before any password: a request for a SCRAM password
# (the access rules let this address in) or the error that refused it.
PROBE = r"""
import socket, ssl, struct, sys
host, user, database = sys.argv[1:4]
sock = socket.create_connection((host, 5432), timeout=10)
sock.sendall(struct.pack("!ii", 8, 80877103))
assert sock.recv(1) == b"S", "no TLS"
context = ssl.create_default_context()
context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
sock = context.wrap_socket(sock)
body = struct.pack("!i", 196608) + b"".join(k.encode() + b"\0" + v.encode() + b"\0" for k, v in
                                           (("user", user), ("database", database))) + b"\0"
sock.sendall(struct.pack("!i", len(body) + 4) + body)
kind, length = struct.unpack("!ci", sock.recv(5))
payload = sock.recv(length - 4)
if kind == b"R":
    print("password asked" if struct.unpack("!i", payload[:4])[0] == 10 else "other auth")
else:
    fields = dict((f[:1], f[1:].decode()) for f in payload.split(b"\0") if f)
    print("refused: " + fields.get(b"M", "?"))
"""


@pytest.fixture(scope="module")
def db():
    return inventory_host("fleet-db")


@pytest.fixture(scope="module")
def webs() -> dict[str, tuple[Lab, object]]:
    hosts = {}
    for name in ("fleet-web1", "fleet-web2", "fleet-web3"):
        web_node = inventory_host(name)
        hosts[name] = (lab_of(web_node), web_node)
    return hosts


def post(lab: Lab, path: str, server_name: str, fields: dict[str, str]) -> tuple[int, dict]:
    port = {int(key): value for key, value in lab.variables["lab_published_ports"].items()}[80]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", path, body=urllib.parse.urlencode(fields),
                     headers={"Host": server_name, "Content-Type": "application/x-www-form-urlencoded"})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


def notes(lab: Lab) -> dict:
    response = lab.request("/notes.json", BOARD)
    assert response.status == 200, response.text[:500]
    return response.json()


def sql(db, database: str, query: str) -> str:
    return db.check_output(f"runuser -u postgres -- psql -XAt -d {database} -c \"{query}\"")


def probe(host, user: str, database: str) -> str:
    return host.check_output(f"python3 -c '{PROBE}' fleet-db {user} {database}")


def test_every_web_server_reads_and_writes_the_same_database(lab, webs):
    text = f"written through fleet-web1 {uuid.uuid4()}"
    status, body = post(webs["fleet-web1"][0], "/notes/add", BOARD, {"text": text})
    assert status == 201, body
    for name, (web_lab, _) in webs.items():
        seen = notes(web_lab)
        assert seen["vendor"] == "postgresql" and seen["database"] == "board", (name, seen)
        assert text in seen["notes"], name
    assert text in notes(lab)["notes"]  # through the balancer
    # The first migration ran once for the whole fleet: one "migrated on" row, though three hosts deployed.
    assert sum(note.startswith("migrated on ") for note in notes(lab)["notes"]) == 1


def test_apps_in_every_mode_get_their_databases_settings_as_secrets(db, webs):
    """board (daemon mode) reads and writes above; catalog (proxy mode, headrace) and catalog-embedded
    (embedded mode) show what they were given: libpq's settings, and the password and URL as digests."""
    for database, mount in (("catalog", "/catalog"), ("catalog_embedded", "/catalog-embedded")):
        password = db.file(f"{CREDENTIALS_DIR}/{database}.password").content_string
        url = f"postgresql://{database}:{urllib.parse.quote(password, safe='')}@fleet-db:5432/{database}?sslmode=require"
        for name, (web_lab, _) in webs.items():
            report = web_lab.request(f"{mount}/environment", "www.example.com").json()
            assert report["database"] == {"PGHOST": "fleet-db", "PGPORT": "5432", "PGDATABASE": database,
                                          "PGUSER": database, "PGSSLMODE": "require"}, (name, report)
            assert report["pgpassword_sha256"] == hashlib.sha256(password.encode()).hexdigest(), (name, database)
            assert report["database_url_sha256"] == hashlib.sha256(url.encode()).hexdigest(), (name, database)


def test_the_new_release_migrated_once_before_any_host_switched(db, webs):
    runs = sql(db, "board", "SELECT host, extract(epoch FROM at) FROM notes_migrationrun").splitlines()
    assert len(runs) == 1, runs
    ran_at = float(runs[0].split("|")[1])
    for name, (_, web_node) in webs.items():
        # lstat: when the `current` link was renamed into place, i.e. when this host switched.
        switched = int(web_node.check_output("stat -c %Y /usr/local/www/apps/board/current"))
        assert ran_at < switched + 1, (name, ran_at, switched)
        assert web_node.file("/usr/local/www/apps/board/current").is_symlink
    assert sql(db, "board", "SELECT count(*) FROM django_migrations WHERE name = '0002_migrationrun'") == "1"


def test_only_the_apps_web_servers_reach_only_its_database(host, db, webs):
    _, web1 = webs["fleet-web1"]
    assert probe(web1, "board", "board") == "password asked"
    assert probe(web1, "catalog", "catalog") == "password asked"
    # Another app's database, with this app's role: no rule lets it in.
    refused = probe(web1, "board", "catalog")
    assert refused.startswith("refused: no pg_hba.conf entry"), refused
    # A host that is not a web server (the balancer): refused for every database.
    for database in DATABASES:
        refused = probe(host, database, database)
        assert refused.startswith("refused: no pg_hba.conf entry"), refused
    rules = db.check_output("grep -Ev '^[[:space:]]*(#|$)' /etc/postgresql/15/main/pg_hba.conf").splitlines()
    assert not any("trust" in rule.split() for rule in rules), rules
    assert {rule.split()[0] for rule in rules} == {"local", "hostssl"}, rules
    assert [rule.split()[:3] for rule in rules if rule.startswith("local")] == [["local", "all", "postgres"]]
    # The server logs to the journal; its connections are logged.
    assert "connection authorized" in db.check_output("journalctl -t postgres --no-pager -q | tail -n 200")


def test_the_passwords_are_in_no_process_list_and_no_file_others_read(host, db, webs):
    directory = db.file(CREDENTIALS_DIR)
    assert (directory.user, directory.mode) == ("root", 0o700)
    passwords = {}
    for name in DATABASES:
        file = db.file(f"{CREDENTIALS_DIR}/{name}.password")
        assert (file.user, file.group, file.mode) == ("root", "root", 0o600), name
        passwords[name] = file.content_string
    for node_name, target in [("fleet-db", db), ("fleet-balancer", host)] + [(n, w) for n, (_, w) in webs.items()]:
        processes = target.check_output("ps -eo args")
        readable = target.run(
            "find /etc /usr/local/www /var/lib /var/log /var/backups /run /tmp /home /opt -xdev -type f -perm -o=r "
            "-size -1024k -print0 2>/dev/null | xargs -0 grep -lF -e " + " -e ".join(passwords.values()))
        for name, password in passwords.items():
            assert password not in processes, (node_name, name)
        assert readable.stdout.strip() == "", (node_name, readable.stdout)
    # catalog's password is the one its wsgi_sites gives (as from ansible-vault); board's was generated.
    given = {app["name"]: app["database"].get("password") for site in webs["fleet-web1"][0].sites
             for app in site.get("apps", []) if app.get("database")}
    assert given["catalog"] and passwords["catalog"] == given["catalog"]
    assert given["board"] is None and len(passwords["board"]) >= 40
    # The app's environment file has them, readable by root and the app's own group only.
    env_file = webs["fleet-web1"][1].file("/etc/wsgi-apps/board.json")
    assert env_file.mode & 0o007 == 0
    assert json.loads(env_file.content_string)["PGPASSWORD"] == passwords["board"]


def test_a_backup_restores_a_dropped_table(db, lab):
    before = notes(lab)["notes"]
    assert before
    # Backups now, as the timer would run them: one more than are kept, a second apart (the names have the
    # time to the second); the oldest is gone.
    assert db.service("wsgi-postgresql-backup@board.timer").is_enabled
    keep = int(lab_of(db).variables["postgresql_backup_keep"])
    made = []
    for _ in range(keep + 1):
        db.check_output("systemctl start wsgi-postgresql-backup@board.service")
        made.append(db.check_output(f"ls -t {BACKUP_DIR}/board | head -n 1"))
        time.sleep(1.1)
    dumps = db.check_output(f"ls {BACKUP_DIR}/board").split()
    assert sorted(dumps) == sorted(made[1:]), (made, dumps)
    assert all(dump.startswith("board-") and dump.endswith(".dump") for dump in dumps), dumps
    dump = db.file(f"{BACKUP_DIR}/board/{max(dumps)}")
    assert (dump.user, dump.mode) == ("root", 0o600)
    assert db.file(BACKUP_DIR).mode == 0o700

    sql(db, "board", "DROP TABLE notes_note")
    assert lab.request("/notes.json", BOARD).status == 500
    result = lab_of(db).playbook(limit=["fleet-db"], playbook="playbooks/restore.yml",
                                 extra_vars={"postgresql_restore_database": "board"})
    assert result.returncode == 0, result.summary()
    assert notes(lab)["notes"] == before
    # Nothing was lost: the database as it was before the restore is kept under another name.
    kept = sql(db, "postgres", "SELECT datname FROM pg_database WHERE datname LIKE 'board_before_%'").split()
    assert len(kept) == 1, kept
    assert sql(db, kept[0], "SELECT count(*) FROM pg_tables WHERE tablename = 'notes_note'") == "0"
    # The restored database belongs to the app's role, which logs in again.
    assert sql(db, "postgres", "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'board'") == "board"
    assert sql(db, "postgres", "SELECT rolcanlogin FROM pg_roles WHERE rolname = 'board'") == "t"


def test_a_restore_with_no_backup_fails_and_changes_nothing(db, lab):
    # The daily backup timers (OnCalendar=daily, up to 30 min later) fire when a run crosses midnight:
    # a backup of catalog they made is not what this test is about.
    db.check_output(f"rm -f {BACKUP_DIR}/catalog/*.dump")
    databases = "SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database"
    before = sql(db, "postgres", databases)
    result = lab_of(db).playbook(limit=["fleet-db"], playbook="playbooks/restore.yml",
                                 extra_vars={"postgresql_restore_database": "catalog"})
    assert result.returncode != 0
    assert "no backup to restore" in result.stdout, result.summary()
    assert sql(db, "postgres", databases) == before  # no database made, none renamed

