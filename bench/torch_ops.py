#!/usr/bin/env python3
"""What a researcher does in Python for each benchmark row, timed as a whole process (import
torch included) by bench/run.py. Usage: torch_ops.py OP FILE [OUT]

  list    torch.load, then print every tensor's name, shape and dtype (the state dict, or all)
  stats   torch.load, then min, max, mean, std, L2 norm, zero fraction, NaN and Inf counts per tensor
  strip   torch.load a training checkpoint and save its inference package (no optimizer state)
  half    torch.load, cast floating tensors to float16, save the state dict
  lora_half  torch.load a base state dict and a PEFT adapter folder (FILE ADAPTER OUT): each weight
          W + lora_alpha / r * (B @ A), as PEFT's merge_and_unload makes it, then .half(), torch.save
  predict torch.load the seed's inference package, build SimpleNN, normalise one row, forward
  diff    torch.load two state dicts (FILE OTHER), then per tensor in float64 what `ckpt diff` gives:
          max and mean |a - b|, relative L2, cosine, elements outside torch.allclose's tolerance
"""
import json
import math
import sys

import torch


def tensors(obj, prefix=''):
    if torch.is_tensor(obj):
        yield prefix or 'tensor', obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from tensors(v, '%s%s%s' % (prefix, '.' if prefix else '', k))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from tensors(v, '%s%s%d' % (prefix, '.' if prefix else '', i))


def model_state(obj):
    if isinstance(obj, dict):
        for k in ('model_state_dict', 'state_dict', 'model'):
            if isinstance(obj.get(k), dict):
                return obj[k]
    return obj


def main():
    op, path = sys.argv[1], sys.argv[2]
    obj = torch.load(path, map_location='cpu', weights_only=False)
    if op == 'list':
        rows = [[n, list(t.shape), str(t.dtype)] for n, t in tensors(model_state(obj))]
        print(json.dumps({'tensors': len(rows)}))
    elif op == 'stats':
        # In float64 as ckpt computes, one torch call per figure and no copy of a tensor unless it
        # has NaNs to leave out (ckpt counts those apart): as lean as plain torch code gets, so the
        # row compares the computation, not a wasteful script (an earlier one copied every tensor's
        # finite values and made float32 passes, which made ckpt look 3.9x faster than torch).
        out = []
        for n, t in tensors(model_state(obj)):
            x = t.double()
            nans = int(torch.isnan(x).sum()) if math.isnan(float(x.sum())) else 0
            v = x[~torch.isnan(x)] if nans else x
            if v.numel() == 0:
                out.append([n, nans])
                continue
            lo, hi = (float(e) for e in torch.aminmax(v))
            infs = 0 if math.isfinite(lo) and math.isfinite(hi) else int(torch.isinf(v).sum())
            out.append([n, lo, hi, float(v.mean()), float(v.std()), float(v.norm()),
                        (v.numel() - int(torch.count_nonzero(v))) / x.numel(), nans, infs])
        print(json.dumps({'tensors': len(out)}))
    elif op == 'strip':
        package = {'model_state_dict': model_state(obj), 'model_config': obj.get('model_config'),
                   'timestamp': obj.get('timestamp'), 'pytorch_version': torch.__version__}
        torch.save(package, sys.argv[3])
    elif op == 'save':  # what `ckpt convert --to state-dict` writes: the weights, saved again
        torch.save(model_state(obj), sys.argv[3])
    elif op == 'half':
        sd = model_state(obj)
        torch.save({k: (v.half() if v.is_floating_point() else v) for k, v in sd.items()}, sys.argv[3])
    elif op in ('safetensors', 'safetensors_half'):
        # What `ckpt convert --to safetensors` writes, by the shortest Python without the safetensors
        # package (Debian has none): torch.load, then the header and each tensor's bytes written from
        # its own memory (numpy's tofile, no copy). Names sorted, as the library sorts equal dtypes.
        sd = model_state(obj)
        if op == 'safetensors_half':
            sd = {k: (v.half() if v.is_floating_point() else v) for k, v in sd.items()}
        tags = {torch.float32: 'F32', torch.float16: 'F16', torch.float64: 'F64', torch.int64: 'I64'}
        header, offset = {}, 0
        for k in sorted(sd):
            v = sd[k].contiguous()
            sd[k] = v
            n = v.numel() * v.element_size()
            header[k] = {'dtype': tags[v.dtype], 'shape': list(v.shape), 'data_offsets': [offset, offset + n]}
            offset += n
        text = json.dumps(header, separators=(',', ':')).encode()
        text += b' ' * (-len(text) % 8)
        with open(sys.argv[3], 'wb') as f:
            f.write(len(text).to_bytes(8, 'little') + text)
            for k in sorted(sd):
                sd[k].numpy().tofile(f)
    elif op == 'lora_half':  # what `ckpt convert BASE --merge-lora ADAPTER --dtype float16` writes
        import os
        folder = sys.argv[3]
        with open(os.path.join(folder, 'adapter_config.json')) as f:
            cfg = json.load(f)
        adapter = torch.load(os.path.join(folder, 'adapter_model.bin'), map_location='cpu')
        sd = model_state(obj)
        scaling = cfg['lora_alpha'] / cfg['r']
        for key in [k for k in adapter if k.endswith('.lora_A.weight')]:
            module = key[len('base_model.model.'):-len('.lora_A.weight')]
            a, b = adapter[key], adapter[key.replace('lora_A', 'lora_B')]
            sd[module + '.weight'] += (b @ a) * scaling
        torch.save({k: (v.half() if v.is_floating_point() else v) for k, v in sd.items()}, sys.argv[4])
    elif op == 'predict':
        import os
        import time
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'tests', 'fixtures'))
        from simple_nn import SimpleNN
        cfg = obj['model_config']
        model = SimpleNN(cfg['input_size'], cfg['hidden_size'], cfg['output_size'])
        model.load_state_dict(obj['model_state_dict'])
        model.eval()
        pre = obj.get('preprocessing') or {'mean': obj['input_mean'], 'std': obj['input_std']}
        x = (torch.tensor([[float(v) for v in sys.argv[3].split(',')]]) - torch.tensor(pre['mean'])) / \
            torch.tensor(pre['std'])
        with torch.no_grad():
            t0 = time.perf_counter()
            y = torch.softmax(model(x), dim=1)
            ms = (time.perf_counter() - t0) * 1000
        print(json.dumps({'probabilities': y.tolist(), 'latency_ms': ms}))
    elif op == 'diff':
        other = model_state(torch.load(sys.argv[3], map_location='cpu', weights_only=False))
        out = []
        for n, t in tensors(model_state(obj)):
            u = other.get(n)
            if u is None or u.shape != t.shape:
                continue
            a, b = t.double().reshape(-1), u.double().reshape(-1)
            finite = torch.isfinite(a) & torch.isfinite(b)
            a, b = a[finite], b[finite]
            d = (a - b).abs()
            out.append([n, torch.equal(t, u), float(d.max()) if d.numel() else 0.0, float(d.mean()) if d.numel() else 0.0,
                        float(d.norm() / a.norm()), float(torch.dot(a, b) / (a.norm() * b.norm())),
                        int((d > 0).sum())])  # outside ckpt diff's default tolerance: exact
        print(json.dumps({'tensors': len(out)}))
    else:
        raise SystemExit('unknown op ' + op)


if __name__ == '__main__':
    main()
