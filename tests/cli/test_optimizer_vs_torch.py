#!/usr/bin/env python3
"""`ckpt info --json`'s optimizer parameters judged by PyTorch: the optimizer's ids are mapped to
the names model.named_parameters() gives (recorded by the fixture generator), buffers skipped, and
each parameter's state (momentum buffers, exp_avg, step) matches what torch.load reads."""
import argparse
import json
import os
import subprocess
import tempfile
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import torch  # noqa: E402
from results import Results  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--ckpt', required=True)
    ap.add_argument('--fixtures', required=True)
    a = ap.parse_args()
    expected = json.load(open(os.path.join(a.fixtures, 'expected.json')))['__optimizer__']
    res = Results()
    for name, names in expected.items():
        path = os.path.join(a.fixtures, name)
        r = subprocess.run([a.ckpt, 'info', path, '--json'], capture_output=True, text=True, timeout=60)
        if not res.check(r.returncode == 0, name, r.stderr):
            continue
        opt = json.loads(r.stdout)['optimizer']
        res.check(opt['mapping']['certain'] is True, name, 'mapping not certain: %s' % opt['mapping']['note'])
        got = [p['name'] for p in opt['parameters']]
        res.check(got == names, name, '%s != %s' % (got, names))
        theirs = torch.load(path, map_location='cpu', weights_only=False)['optimizer_state_dict']
        ids = [i for g in theirs['param_groups'] for i in g['params']]
        res.check([p['id'] for p in opt['parameters']] == ids, name, 'ids')
        for p in opt['parameters']:
            st = theirs['state'].get(p['id'], {})
            for key, value in st.items():
                mine = p.get('state', {}).get(key)
                if isinstance(value, torch.Tensor):
                    ok = isinstance(mine, dict) and mine['__tensor__']['shape'] == list(value.shape)
                else:
                    ok = mine == value
                res.check(ok, '%s: %s.%s' % (name, p['name'], key), '%s vs %s' % (mine, value))

    # A frozen layer left out of an optimizer with two param groups (weights, then biases): the
    # groups' order is not the model's, so no mapping may be called certain.
    tmp = tempfile.mkdtemp(prefix='ckpt-optimizer-')
    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Linear(4, 4), torch.nn.Linear(4, 4))
    for q in m[0].parameters():
        q.requires_grad = False
    opt = torch.optim.Adam([{'params': [m[1].weight, m[2].weight]}, {'params': [m[1].bias, m[2].bias], 'weight_decay': 0}])
    m(torch.randn(2, 4)).sum().backward()
    opt.step()
    path = os.path.join(tmp, 'groups_frozen.pth')
    torch.save({'model_state_dict': m.state_dict(), 'optimizer_state_dict': opt.state_dict()}, path)
    r = subprocess.run([a.ckpt, 'info', path, '--json'], capture_output=True, text=True, timeout=60)
    mapping = json.loads(r.stdout)['optimizer']['mapping'] if r.returncode == 0 else {}
    res.check(mapping.get('certain') is False, 'frozen layer and two param groups: mapping not certain', '%r' % mapping)
    return res.finish()


if __name__ == '__main__':
    sys.exit(main())
