#!/usr/bin/env python3
"""The prediction part of scripts/gpu-check.sh: `ckpt predict` on CUDA against CPU and against
PyTorch's CUDA forward, the exported TorchScript run on CUDA, and latency on GPU and CPU side by
side with PyTorch's. Prints one line per check and a latency table; exit 0 only when a GPU was
used and every check passed (1 on a failure, 2 when there is no CUDA device to check on)."""
import argparse
import copy
import json
import os
import statistics
import subprocess
import sys
import time

import torch

# Outputs on CUDA differ from CPU by the kernels' rounding: per dtype of the computation.
TOLERANCE = {'float32': 1e-4, 'float16': 5e-2, 'bfloat16': 2e-1}


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

    # What ckpt sees: every device PyTorch sees, named as PyTorch names it, with its memory.
    p = subprocess.run([a.ckpt, 'devices', '--json'], capture_output=True, text=True, timeout=300)
    listing = json.loads(p.stdout) if p.returncode == 0 else {'devices': []}
    print('ckpt devices (LibTorch %s):' % listing.get('torch'))
    for d in listing['devices']:
        print('  %-7s %s%s' % (d['id'], d['label'], ('  ' + ', '.join(d['dtypes'])) if d['available'] else
                               '  unavailable: ' + (d['reason'] or '')))
    if not torch.cuda.is_available():
        print('SKIP predictions on CUDA: this PyTorch sees no CUDA device (torch %s)' % torch.__version__)
        return 2
    cuda = [d for d in listing['devices'] if d['id'].startswith('cuda')]
    check([d['id'] for d in cuda] == ['cuda:%d' % i for i in range(torch.cuda.device_count())],
          'ckpt devices lists the %d CUDA device(s) PyTorch sees' % torch.cuda.device_count(), str(cuda))
    for i, d in enumerate(cuda):
        props = torch.cuda.get_device_properties(i)
        check(d['name'] == props.name and d['memory_bytes'] == props.total_memory and
              d['capability'] == '%d.%d' % (props.major, props.minor),
              'cuda:%d named %s, %d bytes, compute %d.%d as PyTorch says' % (i, props.name, props.total_memory,
                                                                               props.major, props.minor), str(d))
        check(('bfloat16' in d['dtypes']) == torch.cuda.is_bf16_supported(),
              'cuda:%d offers bfloat16 exactly when torch.cuda.is_bf16_supported()' % i, str(d['dtypes']))
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
        for dtype in ('float16', 'bfloat16'):
            low, err = predict(c['file'], c['args'], 'cuda', ['--dtype', dtype])
            if low:
                d = worst([o['logits'] for o in low['outputs']], got_cpu)
                check(d <= TOLERANCE[dtype] and low['dtype'] == dtype,
                      c['name'] + ': --dtype %s on cuda within %g of float32 (%.2g)' % (dtype, TOLERANCE[dtype], d))
            else:
                check('kernel' in err and dtype in err, c['name'] + ': --dtype %s refused with the reason' % dtype, err)
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

    # Errors a user meets on a GPU: a device index that does not exist, and running out of memory
    # (a transposed convolution whose output would need about 15 TiB: the allocation fails at once).
    first = cases[0]
    _, err = predict(first['file'], first['args'], 'cuda:%d' % torch.cuda.device_count())
    check('sees %d CUDA device' % torch.cuda.device_count() in err, 'a device index past the last is refused, saying so',
          err)
    spec = json.dumps([{'type': 'ConvTranspose2d', 'name': '0', 'in_channels': 1, 'out_channels': 1,
                        'kernel_size': [1, 1], 'stride': [2000000, 2000000], 'bias': False}])
    huge = os.path.join(os.path.abspath(a.work), 'huge_output.pth')
    torch.save({'0.weight': torch.ones(1, 1, 1, 1)}, huge)
    import numpy as np
    four = os.path.join(os.path.abspath(a.work), 'huge_input.npy')
    np.save(four, np.ones((1, 1, 2, 2), dtype=np.float32))
    _, err = predict(huge, ['--arch-spec', spec, '--input-file', four], 'cuda')
    check('out of memory on cuda:0' in err, 'running out of GPU memory is reported as such', err)

    # Latency: a model large enough to matter. ckpt runs the batch 6 times in one process (its first
    # run includes the device's warm-up); PyTorch's forward is timed in this process after one
    # warm-up run. Medians of the warm runs, on each device and precision.
    torch.manual_seed(0)
    big = torch.nn.Sequential(torch.nn.Linear(4096, 4096), torch.nn.ReLU(), torch.nn.Linear(4096, 4096), torch.nn.ReLU(),
                              torch.nn.Linear(4096, 1000)).eval()
    path = os.path.join(os.path.abspath(a.work), 'big_mlp.pth')
    torch.save(big, path)
    batch = torch.randn(256, 4096)
    npy = os.path.join(os.path.abspath(a.work), 'big_batch.npy')
    import numpy as np
    np.save(npy, batch.numpy())
    print('latency, batch 256 x 4096 through 4096-4096-1000, output copied back (median of 5 warm runs):')
    print('  %-8s %-9s %14s %14s %16s' % ('device', 'dtype', 'ckpt predict', 'PyTorch', 'ckpt first run'))
    for device, dtype in (('cpu', 'float32'), ('cuda', 'float32'), ('cuda', 'float16'), ('cuda', 'bfloat16')):
        r, err = predict(path, ['--input-file', npy, '--top', '1', '--repeat', '6', '--dtype', dtype], device)
        if not r:
            check(False, 'latency on %s in %s' % (device, dtype), err)
            continue
        ours = r['latency_runs_ms']
        model = copy.deepcopy(big).to(device=device, dtype=getattr(torch, dtype))
        xb = batch.to(device=device, dtype=getattr(torch, dtype))
        theirs = []
        with torch.no_grad():
            model(xb).cpu()
            for _ in range(5):
                t0 = time.perf_counter()
                model(xb).cpu()  # the copy back waits for the device, as ckpt's does
                theirs.append((time.perf_counter() - t0) * 1000)
        print('  %-8s %-9s %11.2f ms %11.2f ms %13.2f ms' % (device, dtype, statistics.median(ours[1:]),
                                                             statistics.median(theirs), ours[0]))
    print('%d failed' % len(failures))
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
