#!/usr/bin/env python3
"""Judges a file the conversion pane wrote, with real PyTorch: it must load through torch.load's
weights-only allowlist, hold exactly the source's state-dict keys with torch's own `.to(dtype)` of
each tensor (bit for bit), and, for an inference package, the class names and config asked for.
A full model (--full-model REF) is loaded as one (weights_only=False) and must compute what the
reference model REF computes on a random input of --input-shape.
A shard index (OUTPUT ending in .index.json) is judged through its shards: each one loaded alone
(torch.load's allowlist, or the safetensors layout), holding exactly the tensors the index maps to
it, none past --max-shard-bytes unless alone in its shard, and together the state dict above.
Usage: check_conversion.py OUTPUT SOURCE [--max-shard-bytes N] [--dtype float16] [--class-names a,b] [--drop GLOB] [--strip PREFIX]
       [--inference] [--full-model REF --input-shape 2,3,12,12]"""
import argparse
import fnmatch
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'cli'))
sys.path.insert(0, os.path.join(HERE, '..', 'fixtures'))
import torch  # noqa: E402
from test_convert_vs_torch import load_weights_only, read_safetensors  # noqa: E402  (torch 1.13 refuses Python floats)


def source_state_dict(obj):
    if isinstance(obj, dict):
        for key in ('model_state_dict', 'state_dict'):
            if key in obj and isinstance(obj[key], dict):
                return obj[key]
    return obj


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('output')
    ap.add_argument('source')
    ap.add_argument('--dtype')
    ap.add_argument('--class-names')
    ap.add_argument('--inference', action='store_true')
    ap.add_argument('--drop', action='append', default=[])
    ap.add_argument('--strip', default='')
    ap.add_argument('--full-model')
    ap.add_argument('--input-shape')
    ap.add_argument('--max-shard-bytes', type=int)
    a = ap.parse_args()
    failures = []

    def check(ok, what):
        print('%s %s' % ('ok' if ok else 'FAIL', what))
        if not ok:
            failures.append(what)

    src = torch.load(a.source, map_location='cpu', weights_only=False)
    want_sd = {k: v for k, v in source_state_dict(src).items() if not any(fnmatch.fnmatchcase(k, d) for d in a.drop)}
    if a.strip:
        want_sd = {(k[len(a.strip):] if k.startswith(a.strip) else k): v for k, v in want_sd.items()}
    if a.full_model:
        got = torch.load(a.output, weights_only=False)
        check(isinstance(got, torch.nn.Module) and not got.training, 'a torch.nn.Module in eval mode: %r' % got)
        ref = torch.load(a.full_model, weights_only=False).eval()
        x = torch.rand(*[int(n) for n in a.input_shape.split(',')], generator=torch.Generator().manual_seed(5))
        with torch.no_grad():
            check(torch.equal(got(x), ref(x)), 'model(x) equals the reference model\'s')
        got = got.state_dict()
    elif a.output.endswith('.index.json'):
        with open(a.output) as f:
            index = json.load(f)
        files = list(dict.fromkeys(index['weight_map'].values()))
        check(len(files) > 1, 'index names %d shards' % len(files))
        got = {}
        for name in files:
            path = os.path.join(os.path.dirname(a.output), name)
            part = read_safetensors(path)[0] if name.endswith('.safetensors') else load_weights_only(path)
            check(list(part.keys()) == [k for k, v in index['weight_map'].items() if v == name],
                  '%s holds the tensors the index maps to it' % name)
            size = sum(t.numel() * t.element_size() for t in part.values())
            check(a.max_shard_bytes is None or size <= a.max_shard_bytes or len(part) == 1,
                  '%s: %d tensor bytes' % (name, size))
            got.update(part)
    else:
        got = load_weights_only(a.output)
    got_sd = got['model_state_dict'] if a.inference else got
    check(list(got_sd.keys()) == list(want_sd.keys()), 'keys %s' % list(got_sd.keys()))
    dtype = getattr(torch, a.dtype) if a.dtype else None
    for k, v in want_sd.items():
        if k not in got_sd:
            continue
        want = v.to(dtype) if dtype is not None and v.is_floating_point() else v
        g = got_sd[k]
        check(g.dtype == want.dtype and g.shape == want.shape and torch.equal(g, want),
              '%s: %s %s' % (k, g.dtype, tuple(g.shape)))
    if a.inference:
        if a.class_names is not None:
            check(got.get('class_names') == a.class_names.split(','), 'class_names %r' % got.get('class_names'))
        if isinstance(src, dict) and 'model_config' in src:
            check(got.get('model_config') == src['model_config'], 'model_config %r' % got.get('model_config'))
        sidecar = os.path.splitext(a.output)[0] + '_metadata.json'
        if os.path.exists(sidecar):
            with open(sidecar) as f:
                meta = json.load(f)
            if a.class_names is not None and 'class_names' in meta:
                check(meta['class_names'] == a.class_names.split(','), 'sidecar class_names %r' % meta['class_names'])
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
