#!/usr/bin/env python3
"""`ckpt info` on a file whose dict values are one 64 MiB text, shared through the pickle memo by
100,000 keys: it finishes (each value's display used to read the whole text to choose its quote:
about 20 minutes), and shows the text as Python's repr begins, quote included. torch writes the file
and reads it back."""
import argparse
import os
import subprocess
import sys
import tempfile

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from results import Results  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--ckpt', required=True)
    ap.add_argument('--fixtures', required=False)
    a = ap.parse_args()
    results = Results()
    check = results.check
    d = tempfile.mkdtemp(prefix='ckpt-longtext-')
    big = 'A' * (64 << 20)
    quoted = "it's " * 8000  # longer than what is shown; its single quote makes Python use double quotes
    obj = {'note': quoted}  # first: info lists the first entries
    obj.update(('%x' % i, big) for i in range(100000))
    path = os.path.join(d, 'shared_text.pt')
    torch.save(obj, path)
    back = torch.load(path)
    check(len(back) == 100001 and back['0'] is back['1'] and back['note'] == quoted, 'torch reads it back')
    del back
    try:
        # A generous limit, not a timing assertion: it finishes in seconds, it took about 20 minutes.
        r = subprocess.run([a.ckpt, 'info', path], capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        check(False, 'ckpt info', 'did not finish in 10 minutes')
        return results.finish()
    check(r.returncode == 0, 'ckpt info', 'exit %d: %s' % (r.returncode, r.stderr[-400:]))
    lines = {line.strip().split(':', 1)[0]: line.strip().split(':', 1)[1].strip()
             for line in r.stdout.splitlines() if line.startswith('  ') and ':' in line}
    for key, text in (('0', big), ('note', quoted)):
        shown = lines.get(key, '')
        prefix = shown.rstrip('…')
        check(shown.endswith('…') and len(prefix) > 10 and repr(text).startswith(prefix), key,
              'shown %r, Python: %r' % (shown[:60], repr(text)[:60]))
    return results.finish()


if __name__ == '__main__':
    sys.exit(main())
