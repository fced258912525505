#!/usr/bin/env python3
"""`just bench`: turns the statements one order creation really sent
(captured from PostgreSQL's log with log_statement = 'all') into a pgbench
script, so that the baseline is exactly the service's own SQL.

Usage: capture_sql.py LOG OFFSET DATABASE > create_exact.pgbench

From the log, after byte OFFSET, it takes the session that inserted into
orders.orders, and that session's transaction from BEGIN to COMMIT; each
statement's parameters are written in as literals; every id (a UUID literal,
alone or in an array) and the order number become expressions of pgbench's
client id and a random number, so that each transaction inserts new rows, as
the service does. The
statements between BEGIN and COMMIT are sent as one pipeline, as the service
sends them.
"""
import re
import sys

LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ \w+ \[(\d+)\] (\S*)@(\S*) (LOG|DETAIL):  (.*)$")
PARAM = re.compile(r"\$(\d+) = (NULL|'(?:[^']|'')*')")
UUID = re.compile(r"'[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}'")
UUID_ARRAY = re.compile(r"'\{([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(?:,[0-9a-f-]{36})*)\}'")
NUMBER = re.compile(r"'ORD-[0-9A-Z]{4}-[0-9A-Z]{4}'")


def main(path, offset, database):
    with open(path, "rb") as log:
        log.seek(int(offset))
        text = log.read().decode("utf-8", "replace")
    # Join continuation lines (a statement or parameter list may wrap).
    entries = []
    for raw in text.splitlines():
        match = LINE.match(raw)
        if match:
            entries.append(list(match.groups()))
        elif entries:
            entries[-1][4] += "\n" + raw.lstrip("\t")
    statements = {}  # pid -> [sql]
    for pid, _user, db, kind, message in entries:
        if db != database:
            continue
        if kind == "LOG":
            found = re.match(r"(?:statement|execute [^:]*): (.*)$", message, re.S)
            if found:
                statements.setdefault(pid, []).append(found.group(1).strip())
        elif kind == "DETAIL" and message.startswith("parameters:") and statements.get(pid):
            values = {int(n): v for n, v in PARAM.findall(message)}
            sql = statements[pid][-1]
            for n in sorted(values, reverse=True):
                sql = re.sub(r"\$%d(?!\d)" % n, lambda _: values[n], sql)
            statements[pid][-1] = sql
    for pid, sqls in statements.items():
        inserts = [i for i, s in enumerate(sqls) if re.search(r'INSERT INTO "?orders"?\."?orders"?\b', s)]
        if not inserts:
            continue
        at = inserts[0]
        begin = max(i for i in range(at + 1) if sqls[i].upper() == "BEGIN")
        commit = min(i for i in range(at, len(sqls)) if sqls[i].upper() == "COMMIT")
        batch = sqls[begin + 1 : commit]
        ids = {}

        def uuid_of(quoted):
            k = ids.setdefault(quoted, len(ids))
            return "md5(:client_id || ':' || :n || ':%d')::uuid" % k

        def uuid_array(match):
            # An array parameter (`id = ANY($1)`): each of its ids too.
            return "ARRAY[%s]" % ", ".join(uuid_of("'%s'" % u) for u in match.group(1).split(","))

        out = ["\\set n random(1, 9223372036854775806)", "BEGIN;", "\\startpipeline"]
        for sql in batch:
            sql = UUID_ARRAY.sub(uuid_array, sql)
            sql = UUID.sub(lambda match: uuid_of(match.group(0)), sql)
            sql = NUMBER.sub(lambda _: "('B-' || :client_id || '-' || :n)", sql)
            # pgbench reads `:name` as a variable, also inside a literal: a
            # JSON `"key":null` becomes `"key": null`.
            sql = re.sub(r'":(?=[A-Za-z_])', '": ', sql)
            out.append(sql.replace("\n", " ") + ";")
        out += ["\\endpipeline", "COMMIT;"]
        print("\n".join(out))
        return 0
    print("no order creation found in the log", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
