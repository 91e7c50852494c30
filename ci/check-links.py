#!/usr/bin/env python3
"""Fails on Markdown links that point nowhere: a `#anchor` with no heading of that
name (GitHub's slugs), or a relative file that does not exist.

    ci/check-links.py [FILE.md ...]      (default: README.md and docs/**/*.md)
"""

import glob
import os
import re
import sys

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
FENCE = re.compile(r"^\s*(```|~~~)")


def slug(text):
    """GitHub's heading anchor: lowercase, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"`|\*\*|__", "", text)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link keeps its text
    text = text.strip().lower()
    text = "".join(c for c in text if c.isalnum() or c in " -_")
    return text.replace(" ", "-")


def lines_outside_code(path):
    fenced = False
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if FENCE.match(line):
                fenced = not fenced
                continue
            if not fenced:
                yield number, line


def anchors(path, cache={}):
    if path not in cache:
        seen, found = {}, set()
        for _, line in lines_outside_code(path):
            m = HEADING.match(line)
            if not m:
                continue
            base = slug(m.group(2))
            n = seen.get(base, 0)
            seen[base] = n + 1
            found.add(base if n == 0 else "%s-%d" % (base, n))
        cache[path] = found
    return cache[path]


def check(path):
    errors = []
    for number, line in lines_outside_code(path):
        for target in LINK.findall(line):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
                continue
            file_part, _, anchor = target.partition("#")
            dest = path if not file_part else os.path.normpath(
                os.path.join(os.path.dirname(path), file_part))
            where = "%s:%d: %s" % (path, number, target)
            if not os.path.exists(dest):
                errors.append("%s: no file %s" % (where, dest))
            elif anchor and dest.endswith(".md") and anchor not in anchors(dest):
                errors.append("%s: no heading #%s in %s" % (where, anchor, dest))
    return errors


def main(args):
    files = args or ["README.md"] + sorted(glob.glob("docs/**/*.md", recursive=True))
    errors = [e for f in files for e in check(f)]
    for e in errors:
        print(e, file=sys.stderr)
    print("links: %d files, %d broken" % (len(files), len(errors)))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
