#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz targets from real stored data: the events, options and errors
of `tests/fixtures/v1-histories.db` (written by the version-1 build), the history JSON fixtures, and
small real SQLite files. Run from the repository root: `python3 fuzz/seed_corpus.py`. Inputs that
the fuzzer found and that once broke something are kept beside these as `regression-*` files (this
script never deletes them)."""
import hashlib, json, os, sqlite3

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "fuzz", "corpus")
DB = os.path.join(ROOT, "tests", "fixtures", "v1-histories.db")


def put(target, data, name=None):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    name = name or "seed-" + hashlib.sha1(data).hexdigest()[:12]
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


c = sqlite3.connect(DB)
for (payload,) in c.execute("SELECT DISTINCT payload FROM history"):
    put("stored_event", payload)
for (options,) in c.execute("SELECT DISTINCT options FROM activity_tasks"):
    put("activity_options", options)
for (payload,) in c.execute("SELECT payload FROM history WHERE event_type = 'activity_scheduled'"):
    put("activity_options", json.dumps(json.loads(payload)["options"], separators=(",", ":")))
for (result,) in c.execute("SELECT result FROM workflows WHERE status = 'failed'"):
    put("workflow_error", result)
for (v,) in c.execute(
    "SELECT input FROM workflows UNION SELECT result FROM workflows WHERE status = 'completed'"
    " UNION SELECT input FROM activity_tasks"
):
    if v is not None:
        put("payload", v)
for d in ["30s", "250ms", "5m", "2h", "1d", "1m30s", "1h2m3s4ms", "0ms", "18446744073709551615ms"]:
    put("duration", d)
for name in sorted(os.listdir(os.path.join(ROOT, "tests", "fixtures"))):
    if name.endswith(".json"):
        with open(os.path.join(ROOT, "tests", "fixtures", name), "rb") as f:
            put("history_json", f.read(), "seed-" + name)
c.close()

# Small real SQLite files: the fixture, an empty duraflow-less database, another program's database.
with open(DB, "rb") as f:
    put("sqlite_file", f.read(), "seed-v1-histories.db")
for name, sql in [
    ("seed-other-program.db", "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT); INSERT INTO notes VALUES (1, 'x');"),
    ("seed-empty-schema.db", "PRAGMA user_version = 7;"),
]:
    path = os.path.join(CORPUS, "sqlite_file", name)
    if os.path.exists(path):
        os.remove(path)
    t = sqlite3.connect(path)
    t.executescript(sql)
    t.commit()
    t.close()
