#!/usr/bin/env python3
"""`ckpt info` says which weights are tied: names whose tensors are one tensor to PyTorch (the same
data_ptr(), shape, strides and dtype, as lm_head.weight tied to the embedding's). Text: a "Tied:" line,
a few groups, then how many more; JSON: state_dict.tied, every group. Views of one storage that differ
(a split qkv, a transpose) are not tied. The parameter count is torch's sum(p.numel() for p in
model.parameters()): a tied weight once; in a model saved whole, two Parameters made on one storage
twice, as parameters() yields them.

Every model is built and saved here by torch 1.13; the groups expected are torch's, from the tensors
torch.load gives back."""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from results import Results  # noqa: E402


class LM(torch.nn.Module):
    """A GPT-like head tied to the embedding, and a layer norm that is not tied."""

    def __init__(self, tie=True):
        super().__init__()
        self.transformer = torch.nn.Module()
        self.transformer.wte = torch.nn.Embedding(11, 6)
        self.transformer.ln_f = torch.nn.LayerNorm(6)
        self.lm_head = torch.nn.Linear(6, 11, bias=False)
        if tie:
            self.lm_head.weight = self.transformer.wte.weight


class Shared(torch.nn.Module):
    """Six layers whose weights are each another's: six groups, more than the text lists."""

    def __init__(self):
        super().__init__()
        self.enc = torch.nn.ModuleList(torch.nn.Linear(3, 3) for _ in range(6))
        self.dec = torch.nn.ModuleList(torch.nn.Linear(3, 3) for _ in range(6))
        for e, d in zip(self.enc, self.dec):
            d.weight = e.weight


class TwoParameters(torch.nn.Module):
    """Two Parameter objects on one storage: one memory, yet parameters() yields both."""

    def __init__(self):
        super().__init__()
        self.a = torch.nn.Linear(4, 4)
        self.b = torch.nn.Linear(4, 4)
        self.b.weight = torch.nn.Parameter(self.a.weight.detach())


def torch_groups(named):
    """Names of tensors torch sees as one: same data_ptr, shape, strides and dtype, in order."""
    groups = {}
    for name, t in named:
        groups.setdefault((t.data_ptr(), tuple(t.shape), t.stride(), t.dtype), []).append(name)
    return [g for g in groups.values() if len(g) > 1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--ckpt', required=True)
    ap.add_argument('--fixtures', required=False)
    a = ap.parse_args()
    results = Results()
    check = results.check
    d = tempfile.mkdtemp(prefix='ckpt-tied-')

    def info(path, *extra):
        return subprocess.run([a.ckpt, 'info', path] + list(extra), capture_output=True, timeout=120)

    def info_json(path):
        r = info(path, '--json')
        check(r.returncode == 0, path, r.stderr.decode(errors='replace'))
        return json.loads(r.stdout)['state_dict']

    torch.manual_seed(0)
    qkv = torch.randn(9, 4)
    q, k, v = qkv.split(3)  # views of one storage at different offsets: not tied
    cases = {
        'lm_state_dict.pt': (LM(), False),
        'lm_untied_state_dict.pt': (LM(tie=False), False),
        'lm_whole.pt': (LM(), True),
        'shared_state_dict.pt': (Shared(), False),
        'two_parameters_whole.pt': (TwoParameters(), True),
    }
    for name, (model, whole) in cases.items():
        path = os.path.join(d, name)
        torch.save(model if whole else model.state_dict(), path)
        back = torch.load(path)  # written just above
        named = list(back.state_dict(keep_vars=True).items()) if whole else list(back.items())
        want = torch_groups(named)
        params = sum(p.numel() for p in model.parameters())
        sd = info_json(path)
        check(sd.get('tied') == want, name, 'tied %s, torch %s' % (sd.get('tied'), want))
        check(sd['parameters'] == params, name, 'parameters %d, torch %d' % (sd['parameters'], params))
        text = info(path).stdout.decode(errors='replace')
        lines = [x for x in text.splitlines() if x.startswith('Tied:')]
        if not want:
            check(lines == [], name + ' text', 'a Tied line for no tied weights: %s' % lines)
        elif len(want) <= 4:
            check(len(lines) == 1 and all(' = '.join(g) in lines[0] for g in want), name + ' text', lines)
        else:
            check(len(lines) == 1 and ' = '.join(want[0]) in lines[0] and
                  'and %d more groups' % (len(want) - 4) in lines[0] and ' = '.join(want[-1]) not in lines[0],
                  name + ' text', lines)
    check(len(torch_groups(LM().state_dict().items())) == 1, 'torch', 'the LM ties one pair')

    # Views that differ are not tied: a split qkv (other offsets), a transpose (other strides).
    path = os.path.join(d, 'views.pt')
    w = torch.randn(4, 5)
    torch.save({'q': q, 'k': k, 'v': v, 'w': w, 'w_t': w.t()}, path)
    back = torch.load(path)
    check(back['q'].storage().data_ptr() == back['k'].storage().data_ptr(), 'torch', 'q and k share a storage')
    want = torch_groups(back.items())
    sd = info_json(path)
    check(want == [] and sd.get('tied') == [], 'views', 'tied %s, torch %s' % (sd.get('tied'), want))
    check(not [x for x in info(path).stdout.decode().splitlines() if x.startswith('Tied:')], 'views text')
    return results.finish()


if __name__ == '__main__':
    sys.exit(main())
