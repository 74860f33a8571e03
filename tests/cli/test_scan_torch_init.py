#!/usr/bin/env python3
"""`ckpt scan` judges the functions torch.nn.init defines harmless: a full model keeps the init
function it was built with as an attribute (torch.nn.init.xavier_uniform_), and torch.save writes it
as a global. The names are torch's own (their __module__ is torch.nn.init, taken here from torch as
the header's generator takes them), the deprecated ones without the underscore too. What the module
imports (math, warnings, torch), a dotted name through it and its private helpers stay dangerous, and
torch 1.13's torch.load(weights_only=True) refuses each of those.

The hostile pickles are written here byte by byte and never unpickled (a plain global of a harmless
function is loaded once, to show which object Python finds); the model is saved and loaded by torch."""
import argparse
import json
import os
import pickle
import sys
import tempfile
import types

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from results import Results  # noqa: E402
from scanrun import refused_by_torch, scanner  # noqa: E402


def text(s):
    b = s.encode()
    return b'X' + len(b).to_bytes(4, 'little') + b


def holding(module, name):
    """{'k': module.name} with STACK_GLOBAL (protocol 4, any name): nothing called."""
    return b'\x80\x04}' + text('k') + text(module) + text(name) + b'\x93s.'


def init_functions():
    """The public functions torch.nn.init defines, as scripts/python_names.py lists them."""
    m = torch.nn.init
    return sorted(n for n, o in vars(m).items()
                  if not n.startswith('_') and isinstance(o, types.FunctionType) and o.__module__ == m.__name__)


class Net(torch.nn.Module):
    """A model keeping its init functions, as some code bases do (self.init_fn = nn.init.xavier_uniform_)."""

    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(4, 3)
        self.weight_init = torch.nn.init.xavier_uniform_
        self.bias_init = torch.nn.init.zeros_
        self.inits = {'conv': torch.nn.init.kaiming_normal_, 'embed': torch.nn.init.trunc_normal_}
        self.weight_init(self.fc.weight)


# (module, name, why dangerous): the modules torch.nn.init imports under its own names, a dotted
# name that follows one, and a private helper (_make_deprecate wraps whatever callable it is given).
HOSTILE = [
    ('torch.nn.init', 'math'),
    ('torch.nn.init', 'warnings'),
    ('torch.nn.init', 'torch'),
    ('torch.nn.init', 'math.sqrt'),
    ('torch.nn.init', 'warnings.warn'),
    ('torch.nn.init', 'torch.save'),
    ('torch.nn.init', '_make_deprecate'),
    ('torch.nn.init.math', 'sqrt'),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--ckpt', required=True)
    ap.add_argument('--fixtures', required=False)
    a = ap.parse_args()
    results = Results()
    check = results.check
    d = tempfile.mkdtemp(prefix='ckpt-init-')

    scan, scan_json = scanner(a.ckpt)

    # A full model saved by torch: exit 0, the init functions shown by name, not dangerous.
    path = os.path.join(d, 'full_model_with_init.pt')
    torch.save(Net(), path)
    back = torch.load(path)  # written just above
    check(back.weight_init is torch.nn.init.xavier_uniform_, 'torch', 'the model keeps its init function')
    rc, j = scan_json(path)
    classes = {x['name']: x['class'] for x in j['globals']}
    check(rc == 0 and not j['dangerous'], 'full model', 'exit %d: %s' % (rc, json.dumps(classes)))
    for name in ('xavier_uniform_', 'zeros_', 'kaiming_normal_', 'trunc_normal_'):
        check(classes.get('torch.nn.init.' + name) == 'unknown', 'full model ' + name, json.dumps(classes))
    r = scan(path)
    check(r.returncode == 0 and b'torch.nn.init.xavier_uniform_' in r.stdout and b'DANGEROUS' not in r.stdout,
          'full model text', r.stdout.decode(errors='replace'))

    # Every function torch.nn.init defines, the deprecated aliases too (torch.save cannot write
    # those, their qualified name is local to _make_deprecate; a hand-made pickle names them).
    names = init_functions()
    check('xavier_uniform' in names and 'kaiming_normal_' in names and 'math' not in names, 'torch names', names)
    for name in names:
        data = holding('torch.nn.init', name)
        found = pickle.loads(data)['k']  # a global of a plain function: nothing called
        check(found is getattr(torch.nn.init, name), 'python ' + name, repr(found))
        path = os.path.join(d, 'init.%s.pkl' % name)
        with open(path, 'wb') as f:
            f.write(data)
        rc, j = scan_json(path)
        g = [x for x in j['globals'] if x['name'] == 'torch.nn.init.' + name]
        check(rc == 0 and len(g) == 1 and g[0]['class'] == 'unknown', name, 'exit %d: %s' % (rc, json.dumps(j)[:400]))

    # What the module imports, dotted names through it, its private helpers: dangerous, refused by torch.
    for module, name in HOSTILE:
        where = '%s.%s' % (module, name)
        path = os.path.join(d, 'hostile.%s.pkl' % where)
        with open(path, 'wb') as f:
            f.write(holding(module, name))
        check(refused_by_torch(path) is not None, where, 'torch.load(weights_only=True) accepted it')
        rc, j = scan_json(path)
        g = [x for x in j['globals'] if x['name'] == where]
        check(rc == 3 and j['dangerous'] and len(g) == 1 and g[0]['class'] == 'dangerous', where,
              'exit %d: %s' % (rc, json.dumps(j)[:400]))
    return results.finish()


if __name__ == '__main__':
    sys.exit(main())
