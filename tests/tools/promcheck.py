#!/usr/bin/python3
"""Check a Prometheus text exposition file, then print the values asked for.

usage: promcheck.py FILE [QUERY...]

FILE is parsed with prometheus_client's own parser (the reference Python
implementation of the text format), then checked line by line for what that
parser forgives: every family has exactly one HELP and one TYPE line before its
samples, its samples are contiguous and carry its exact name, counters end in
_total, no sample (name and labels) appears twice, the file ends in a newline.

A QUERY is NAME or NAME{label=value,...}: the sum of the samples of NAME whose
labels include those given, printed one per line. A query that selects no
sample is an error.

Exit status: 0 if the file is valid and every query selected something; 1 with
a message on stderr otherwise.
"""
import re
import sys

from prometheus_client.parser import text_string_to_metric_families

NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
SAMPLE = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)\Z")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|\Z)')
TYPES = {"counter", "gauge", "untyped", "summary", "histogram"}


def fail(path, n, msg):
    where = f"{path}:{n}: " if n else f"{path}: "
    print(f"promcheck: {where}{msg}", file=sys.stderr)
    sys.exit(1)


def labels_of(path, n, text):
    if not text:
        return ()
    body, out = text[1:-1], []
    while body:
        m = LABEL.match(body)
        if not m:
            fail(path, n, f"malformed labels {text}")
        out.append((m.group(1), m.group(2)))
        body = body[m.end():]
    return tuple(sorted(out))


def check(path, text):
    """The raw lines' rules; returns {(name, labels): value}."""
    if not text.endswith("\n"):
        fail(path, 0, "does not end with a newline")
    help_, type_, closed, samples = {}, {}, set(), {}
    current = None
    for n, line in enumerate(text.split("\n")[:-1], 1):
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) < 3 or parts[1] not in ("HELP", "TYPE"):
                continue  # a plain comment
            kind, name = parts[1], parts[2]
            if not NAME.match(name):
                fail(path, n, f"bad metric name {name!r}")
            seen = help_ if kind == "HELP" else type_
            if name in seen:
                fail(path, n, f"second {kind} line for {name}")
            if name in closed:
                fail(path, n, f"{kind} for {name} after its samples")
            if kind == "HELP":
                if len(parts) < 4 or not parts[3].strip():
                    fail(path, n, f"empty HELP for {name}")
                help_[name] = parts[3]
            else:
                if len(parts) < 4 or parts[3] not in TYPES:
                    fail(path, n, f"bad TYPE line {line!r}")
                type_[name] = parts[3]
            if current and current != name:
                closed.add(current)
            current = name
            continue
        if not line.strip():
            fail(path, n, "empty line")
        m = SAMPLE.match(line)
        if not m:
            fail(path, n, f"not a sample line: {line!r}")
        name, labels, value = m.group(1), labels_of(path, n, m.group(2)), m.group(3)
        if name not in help_ or name not in type_:
            fail(path, n, f"{name} has no HELP and TYPE lines before its samples")
        if name in closed or (current and current != name):
            fail(path, n, f"samples of {name} are not grouped together")
        current = name
        if type_[name] == "counter" and not name.endswith("_total"):
            fail(path, n, f"counter {name} does not end in _total")
        if (name, labels) in samples:
            fail(path, n, f"duplicate sample {name}{m.group(2) or ''}")
        try:
            samples[(name, labels)] = float(value)
        except ValueError:
            fail(path, n, f"value {value!r} is not a number")
    for name in set(help_) | set(type_):
        if name not in help_ or name not in type_:
            fail(path, 0, f"{name} has a HELP or a TYPE line but not both")
    return samples


def query(path, samples, q):
    m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\Z", q)
    if not m:
        fail(path, 0, f"bad query {q!r}")
    want = dict(kv.split("=", 1) for kv in m.group(2).split(",")) if m.group(2) else {}
    hits = [v for (name, labels), v in samples.items()
            if name == m.group(1) and want.items() <= dict(labels).items()]
    if not hits:
        fail(path, 0, f"no sample matches {q}")
    total = sum(hits)
    return str(int(total)) if total == int(total) else repr(total)


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        sys.exit(1)
    path = sys.argv[1]
    with open(path, encoding="utf-8") as f:
        text = f.read()
    try:
        parsed = sum(len(fam.samples) for fam in text_string_to_metric_families(text))
    except Exception as e:  # the parser raises ValueError and others on bad input
        fail(path, 0, f"prometheus_client cannot parse it: {e!r}")
    samples = check(path, text)
    if parsed != len(samples):
        fail(path, 0, f"prometheus_client read {parsed} samples, the lines hold {len(samples)}")
    for q in sys.argv[2:]:
        print(query(path, samples, q))


if __name__ == "__main__":
    main()
