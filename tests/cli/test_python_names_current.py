#!/usr/bin/env python3
"""model/format/pythonnames.h is what scripts/python_names.py writes from this Python: the standard
library's module names and _compat_pickle's tables the security verdict and the pickle reader use. A
newer Python (new modules) or a hand edit shows here; regenerate with the command in the script."""
import argparse
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from results import Results  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--source', required=True)
    a = ap.parse_args()
    results = Results()
    script = os.path.join(a.source, 'scripts', 'python_names.py')
    header = os.path.join(a.source, 'model', 'format', 'pythonnames.h')
    made = subprocess.run([sys.executable, script], capture_output=True, text=True, check=True).stdout
    with open(header) as f:
        committed = f.read()
    results.check(made == committed, 'pythonnames.h',
                  'differs from what scripts/python_names.py writes: /usr/bin/python3 scripts/python_names.py > '
                  'model/format/pythonnames.h')
    # What the header is for: names the old lists missed are in it.
    for name in ('uuid', '_xxsubinterpreters', 'winreg', '_winapi', 'BaseHTTPServer', 'whichdb', '_socket'):
        results.check('"%s",' % name in committed, name, 'not among the standard library names')
    return results.finish()


if __name__ == '__main__':
    sys.exit(main())
