#!/usr/bin/env python3
"""`ckpt convert --to full-model` from weights keeps the source's Parameter objects as torch has them.
Where the source kept its Parameters (torch.save(model.state_dict(keep_vars=True))), the pickle's memo
says which names are one object: a true tie (`b.weight = a.weight`) is one Parameter, two Parameters
made on one storage (`b.weight = nn.Parameter(a.weight)`) are two, each an entry of parameters() that
an optimizer steps apart, on the same data. A detached state dict (state_dict()) cannot say which it
was: names that view one storage alike are one Parameter there, as a tie.

torch 1.13 is the judge: the source model built here, and the model torch.load gives back from our
file: the count of parameters(), which names hold the same Parameter object (named_parameters with
remove_duplicate=False, as each module's _parameters lists them), and which share data_ptr()."""
import argparse
import os
import subprocess
import sys
import tempfile

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from results import Results  # noqa: E402


def model(how):
    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU(), torch.nn.Linear(4, 4), torch.nn.ReLU(),
                            torch.nn.Linear(4, 4))
    if how == 'tied':
        m[2].weight = m[0].weight
    elif how == 'distinct':
        m[2].weight = torch.nn.Parameter(m[0].weight)  # a second Parameter on the first's storage
    elif how == 'both':
        m[2].weight = torch.nn.Parameter(m[0].weight)
        m[4].weight = m[0].weight
    return m


def shape_of(m):
    """(number of parameters(), names grouped by Parameter object, names grouped by data_ptr)."""
    named = [(mn + '.' + pn if mn else pn, p) for mn, mod in m.named_modules()
             for pn, p in mod._parameters.items() if p is not None]

    def groups(key):
        out = {}
        for n, p in named:
            out.setdefault(key(p), []).append(n)
        return sorted(out.values())

    return len(list(m.parameters())), groups(id), groups(lambda p: p.data_ptr())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--ckpt', required=True)
    a = ap.parse_args()
    res = Results()
    d = tempfile.mkdtemp(prefix='ckpt-fullmodel-identity-')
    for how in ('distinct', 'tied', 'both', 'untied'):
        m = model(how)
        for source, obj in (('state_dict(keep_vars=True)', m.state_dict(keep_vars=True)),
                            ('state_dict()', m.state_dict())):
            name = '%s, %s' % (how, source)
            path = os.path.join(d, '%s_%d.pt' % (how, len(source)))
            out = path + '.full.pt'
            torch.save(obj, path)
            r = subprocess.run([a.ckpt, 'convert', path, '--to', 'full-model', '-o', out], capture_output=True,
                               text=True, timeout=300)
            if not res.check(r.returncode == 0, name + ': converts', r.stderr[-400:]):
                continue
            got = torch.load(out, weights_only=False)
            want = shape_of(m)
            if source == 'state_dict()' and how in ('distinct', 'both'):
                # Detached, the source says nothing of its objects: views alike are one Parameter.
                count, _, by_data = want
                want = (count - 1, by_data, by_data)
            res.check(shape_of(got) == want, name + ': parameters, objects and data as torch has them',
                      'ours %s, torch %s' % (shape_of(got), want))
            x = torch.randn(3, 4)
            res.check(torch.equal(got(x), m(x)), name + ': the same forward', '')
    return res.finish()


if __name__ == '__main__':
    sys.exit(main())
