#!/usr/bin/env python3
"""A state dict's `_metadata` (the OrderedDict attribute torch's state_dict() sets: module prefix ->
{'version': N}, which Module._load_from_state_dict reads) survives `ckpt convert` to safetensors and
back, judged by PyTorch: torch.load of the converted-back file has `_metadata` equal to the original's
(same prefixes, same order, same versions), load_state_dict(strict=True) takes it into the module,
and the safetensors file in between still loads with safetensors' own reader (the entry is a string,
as the format requires). Prefix edits on the way back rename the prefixes as torch's own wrapper
would. The inputs are made here by torch.save, into a temporary folder."""
import argparse
import collections
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
from results import Results  # noqa: E402

KEY = 'checkpoint_studio.state_dict_metadata'


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(6, 6)
        self.bn = nn.BatchNorm1d(6)
        self.ln = nn.LayerNorm(6)

    def forward(self, x):
        return self.ln(self.bn(self.fc(x)))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Linear(4, 6)
        self.blocks = nn.Sequential(Block(), Block())
        self.head = nn.Linear(6, 3)
        self.norm = nn.BatchNorm1d(3)

    def forward(self, x):
        return self.norm(self.head(self.blocks(self.stem(x))))


def header_of(path):
    with open(path, 'rb') as f:
        n = struct.unpack('<Q', f.read(8))[0]
        return json.loads(f.read(n))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--ckpt', required=True)
    a = ap.parse_args()
    res = Results()
    tmp = tempfile.mkdtemp(prefix='ckpt-sd-metadata-')
    try:
        torch.manual_seed(0)
        model = Net()
        model.train()
        model(torch.randn(8, 4))  # running stats and num_batches_tracked move off their defaults
        model.eval()
        sd = model.state_dict()
        # Versions that differ from today's: what an older torch recorded (BatchNorm before
        # num_batches_tracked was version 1), which _load_from_state_dict reads.
        sd._metadata['blocks.0.bn'] = {'version': 1}
        src = os.path.join(tmp, 'net.pth')
        torch.save(sd, src)

        def convert(inp, to, out, *extra):
            r = subprocess.run([a.ckpt, 'convert', inp, '--to', to, '-o', out, *extra], capture_output=True,
                               text=True, timeout=300)
            res.check(r.returncode == 0, 'convert %s --to %s' % (os.path.basename(inp), to), r.stderr)
            return r

        st = os.path.join(tmp, 'net.safetensors')
        convert(src, 'safetensors', st)
        meta = header_of(st).get('__metadata__', {})
        res.check(isinstance(meta.get(KEY), str), 'the _metadata is kept in __metadata__ as a string', repr(meta))
        kept = json.loads(meta.get(KEY, '{}'), object_pairs_hook=collections.OrderedDict)
        res.check(list(kept.items()) == [(k, dict(v)) for k, v in sd._metadata.items()],
                  'the kept _metadata is the state dict\'s, in its order', repr(kept))
        try:
            from safetensors.torch import load_file
            loaded = load_file(st)
            res.check(set(loaded) == set(sd), 'safetensors\' own reader loads the file', repr(sorted(loaded)))
        except ImportError:
            pass

        # The kept entry is this tool's bookkeeping, not a fact about the model that info lists.
        r = subprocess.run([a.ckpt, 'info', st], capture_output=True, text=True, timeout=120)
        res.check(r.returncode == 0 and KEY not in r.stdout, 'info does not list the bookkeeping entry', r.stdout)

        for to in ('state-dict', 'checkpoint'):
            back = os.path.join(tmp, 'back_%s.pth' % to)
            convert(st, to, back)
            got = torch.load(back)
            got_sd = got if to == 'state-dict' else got.get('model_state_dict', got)
            md = getattr(got_sd, '_metadata', None)
            res.check(md is not None and list(md.items()) == list(sd._metadata.items()),
                      '--to %s: _metadata equals the original\'s' % to,
                      '%r vs %r' % (md and list(md.items())[:4], list(sd._metadata.items())[:4]))
            fresh = Net()
            try:
                fresh.load_state_dict(got_sd, strict=True)
                ok = all(torch.equal(fresh.state_dict()[k], v) for k, v in sd.items())
                res.check(ok, '--to %s: load_state_dict(strict=True) gives the original weights' % to)
            except Exception as e:  # noqa: BLE001
                res.check(False, '--to %s: load_state_dict(strict=True)' % to, str(e))

        # safetensors to safetensors keeps it too.
        st2 = os.path.join(tmp, 'net2.safetensors')
        convert(st, 'safetensors', st2)
        res.check(header_of(st2).get('__metadata__', {}).get(KEY) == meta.get(KEY),
                  'safetensors to safetensors keeps the _metadata')

        # A wrapper's prefix added on the way back: the prefixes renamed as DataParallel's own
        # state_dict() names them.
        back = os.path.join(tmp, 'back_dp.pth')
        convert(st, 'state-dict', back, '--add-prefix', 'module.')
        md = getattr(torch.load(back), '_metadata', {})
        dp = nn.DataParallel(Net())
        want = list(dp.state_dict()._metadata)
        res.check(list(md) == want, '--add-prefix: the prefixes as DataParallel names them',
                  '%r vs %r' % (list(md)[:4], want[:4]))
        res.check(md.get('module.blocks.0.bn') == {'version': 1}, '--add-prefix: the versions kept',
                  repr(md.get('module.blocks.0.bn')))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return res.finish()


if __name__ == '__main__':
    sys.exit(main())
