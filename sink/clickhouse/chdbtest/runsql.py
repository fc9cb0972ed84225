"""Runs SQL on chDB for sink/clickhouse/chdbtest.

Reads {"setup": [sql...], "queries": [sql...]} as JSON on stdin. Every
setup statement runs in order in one fresh in-memory session, inside the
database "crmpulse", and the first failure ends the run. Each query then runs
with FORMAT TSVWithNamesAndTypes; its rows, column types or error are
written as one JSON object on stdout: {"version", "results": [...]}.
"""
import json
import sys
import tempfile

from chdb import session


def main():
    req = json.load(sys.stdin)
    with tempfile.TemporaryDirectory() as path:
        s = session.Session(path)
        s.query("SET session_timezone = 'UTC'")
        s.query("CREATE DATABASE IF NOT EXISTS crmpulse")
        s.query("USE crmpulse")
        out = {"version": str(s.query("SELECT version()", "TSV")).strip(), "results": []}
        for i, stmt in enumerate(req.get("setup") or []):
            try:
                s.query(stmt)
            except Exception as e:  # the statement and its error, for the Go test
                out["setup_error"] = {"index": i, "statement": stmt, "error": str(e)}
                json.dump(out, sys.stdout)
                return
        for q in req.get("queries") or []:
            try:
                text = str(s.query(q, "TSVWithNamesAndTypes"))
            except Exception as e:
                out["results"].append({"error": str(e)})
                continue
            lines = text.split("\n")
            if lines and lines[-1] == "":
                lines.pop()
            names = lines[0].split("\t") if lines else []
            types = lines[1].split("\t") if len(lines) > 1 else []
            out["results"].append({"names": names, "types": types, "rows": [l.split("\t") for l in lines[2:]]})
        json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
