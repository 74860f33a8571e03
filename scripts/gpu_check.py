#!/usr/bin/env python3
"""The prediction part of scripts/gpu-check.sh: `ckpt predict` on CUDA against CPU and against
PyTorch's CUDA forward, the exported TorchScript run on CUDA, and latency on GPU and CPU side by
side with PyTorch's. Prints one line per check and a latency table; exit 0 only when a GPU was
used and every check passed (1 on a failure, 2 when there is no CUDA device to check on)."""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import torch

# Outputs on CUDA differ from CPU by the kernels' rounding: per dtype of the computation.
TOLERANCE = {'float32': 1e-4, 'float16': 5e-2}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--ckpt', required=True)
    ap.add_argument('--fixtures', required=True)
    ap.add_argument('--work', required=True)
    a = ap.parse_args()
    failures = []

    def check(ok, what, detail=''):
        print('%s %s%s' % ('PASS' if ok else 'FAIL', what, (': ' + detail) if detail and not ok else ''))
        if not ok:
            failures.append(what)

    def predict(file, args, device, extra=()):
        p = subprocess.run([a.ckpt, 'predict', file] + args + ['--json', '--device', device] + list(extra),
                           capture_output=True, text=True, timeout=300, cwd=a.fixtures)
        return (json.loads(p.stdout) if p.returncode == 0 else None), p.stderr.strip()

    def worst(x, y):
        return max((abs(u - v) for r, s in zip(x, y) for u, v in zip(r, s)), default=0.0)

    if not torch.cuda.is_available():
        print('SKIP predictions on CUDA: this PyTorch sees no CUDA device (torch %s)' % torch.__version__)
        return 2
    with open(os.path.join(a.fixtures, 'expected.json')) as f:
        cases = json.load(f)['__predict__']['cases']
    for c in cases:
        cpu, err = predict(c['file'], c['args'], 'cpu')
        gpu, err2 = predict(c['file'], c['args'], 'cuda')
        if not cpu or not gpu:
            check(False, c['name'] + ': predict on cpu and cuda', err or err2)
            continue
        check(gpu['device'].startswith('cuda'), c['name'] + ': ran on ' + gpu['device'])
        got_cpu = [o['logits'] for o in cpu['outputs']]
        got_gpu = [o['logits'] for o in gpu['outputs']]
        d = worst(got_gpu, got_cpu)
        check(d <= TOLERANCE['float32'], c['name'] + ': cuda vs cpu within %g (%.2g)' % (TOLERANCE['float32'], d))
        d = worst(got_cpu, c['expected']['logits'])
        check(d <= 1e-5, c['name'] + ': cpu vs PyTorch (this version) within 1e-5 (%.2g)' % d)
        half, _ = predict(c['file'], c['args'], 'cuda', ['--half'])
        if half:
            d = worst([o['logits'] for o in half['outputs']], got_cpu)
            check(d <= TOLERANCE['float16'], c['name'] + ': --half within %g (%.2g)' % (TOLERANCE['float16'], d))
        if not c['export']:
            continue
        dest = os.path.join(os.path.abspath(a.work), 'export_%d.pt' % cases.index(c))
        p = subprocess.run([a.ckpt, 'convert', c['file'], '--to', 'torchscript', '-o', dest, '--force'] +
                           [x for i, x in enumerate(c['args']) if x in ('--arch', '--arch-spec', '--activation') or
                            (i > 0 and c['args'][i - 1] in ('--arch', '--arch-spec', '--activation'))],
                           capture_output=True, text=True, timeout=300, cwd=a.fixtures)
        if not p.returncode == 0:
            check(False, c['name'] + ': convert --to torchscript', p.stderr.strip())
            continue
        module = torch.jit.load(dest, map_location='cuda').eval()
        x = torch.tensor(c['model_input'], dtype=getattr(torch, c['model_input_dtype'])).cuda()
        with torch.no_grad():
            y = module(x).reshape(x.shape[0], -1).double().cpu().tolist()
        d = worst(y, c['expected']['logits'])
        check(d <= TOLERANCE['float32'], c['name'] + ': exported TorchScript on CUDA in PyTorch (%.2g)' % d)

    # Latency: a model large enough to matter, whole process for ckpt (its latency_ms is per run,
    # in-process) against PyTorch's forward in this process, on each device.
    torch.manual_seed(0)
    big = torch.nn.Sequential(torch.nn.Linear(4096, 4096), torch.nn.ReLU(), torch.nn.Linear(4096, 4096), torch.nn.ReLU(),
                              torch.nn.Linear(4096, 1000)).eval()
    path = os.path.join(os.path.abspath(a.work), 'big_mlp.pth')
    torch.save(big, path)
    batch = torch.randn(256, 4096)
    npy = os.path.join(os.path.abspath(a.work), 'big_batch.npy')
    import numpy as np
    np.save(npy, batch.numpy())
    print('latency, batch 256 x 4096 through 4096-4096-1000 (median of 5 runs):')
    print('  %-8s %14s %14s' % ('device', 'ckpt predict', 'PyTorch'))
    for device in ('cpu', 'cuda'):
        ours = []
        for _ in range(5):
            r, err = predict(path, ['--input-file', npy, '--top', '1'], device)
            if not r:
                check(False, 'latency on ' + device, err)
                break
            ours.append(r['latency_ms'])
        model = big.to(device)
        xb = batch.to(device)
        theirs = []
        with torch.no_grad():
            model(xb)
            for _ in range(5):
                if device == 'cuda':
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
                model(xb)
                if device == 'cuda':
                    torch.cuda.synchronize()
                theirs.append((time.perf_counter() - t0) * 1000)
        print('  %-8s %11.2f ms %11.2f ms' % (device, statistics.median(ours) if ours else float('nan'),
                                             statistics.median(theirs)))
    print('%d failed' % len(failures))
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
