#!/usr/bin/env python3
"""`ckpt predict` on a bfloat16 TorchScript GRU (computed as float32) and `ckpt predict --dtype
bfloat16 --export-torchscript` judged by torch: the printed logits are torch's
`scripted.float()(x)` and the exported file computes torch's `scripted.to(bfloat16)(x)`."""
import argparse, json, os, subprocess, sys, tempfile
import torch, torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from results import Results  # noqa: E402
from test_dtype_cast_vs_torch import GRUCls  # noqa: E402  (the same model as the export test)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--ckpt', required=True)
    args = ap.parse_args()
    res = Results()
    x = torch.tensor([[1, 5, 9, 3]])
    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        real = os.path.join(tmp, 'gru.pt')
        torch.jit.script(GRUCls().eval()).save(real)
        bf16 = os.path.join(tmp, 'gru_bf16.pt')
        torch.jit.save(torch.jit.load(real).to(torch.bfloat16), bf16)  # torch's own bfloat16 file
        r = subprocess.run([args.ckpt, 'predict', bf16, '--input', '1,5,9,3', '--json'], capture_output=True, text=True)
        if res.check(r.returncode == 0, 'predict a bfloat16 scripted GRU', r.stderr):
            got = torch.tensor(json.loads(r.stdout)['outputs'][0]['logits'], dtype=torch.float64)
            want = torch.jit.load(bf16).float()(x)[0].double()
            res.check(torch.allclose(got, want, rtol=0, atol=1e-6), 'its logits are torch\'s .float() output',
                      '%s vs %s' % (got.tolist(), want.tolist()))
        out = os.path.join(tmp, 'exported.pt')
        r = subprocess.run([args.ckpt, 'predict', real, '--input', '1,5,9,3', '--dtype', 'bfloat16',
                            '--export-torchscript', out], capture_output=True, text=True)
        if res.check(r.returncode == 0, 'predict --dtype bfloat16 --export-torchscript', r.stderr):
            with torch.no_grad():
                res.check(torch.equal(torch.jit.load(out)(x), torch.jit.load(real).to(torch.bfloat16)(x)),
                          'the exported module computes torch\'s scripted.to(bfloat16) output')
    return res.finish()


if __name__ == '__main__':
    sys.exit(main())
