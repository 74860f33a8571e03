#!/usr/bin/env python3
"""Write the benchmark checkpoints with real PyTorch (/usr/bin/python3).

Usage:  /usr/bin/python3 bench/generate.py [--out bench/data] [--skip-4g]

  sd_1g.pth        state dict, 64 float32 tensors, 1 GiB
  sd_4g.pth        state dict, 64 float32 tensors, 4 GiB   (same tensor count as the 100 MiB one)
  sd_100m.pth      state dict, 64 float32 tensors, 100 MiB
  sd_1g_tuned.pth  sd_1g.pth with every weight moved by small noise (what `ckpt diff` compares it to)
  sd_20k.pth       state dict, 20,000 small tensors (structure-heavy)
  train_1g.pth     training checkpoint: model + Adam state (exp_avg, exp_avg_sq) + metadata, ~1 GiB
  deflated_4x1g.pth  four 1 GiB float32 storages, every record deflated (a re-zipped file): ~4 MiB
                   on disk, 4 GiB once inflated
  st_meta_8m.safetensors  one small tensor under a 96 MB header of 8,000,000 __metadata__ entries
  big_1g.pth       state dict of one float32 tensor of 1 GiB (what `convert --to safetensors` copied whole)
  lora_base_400m.pth  24 nn.Linear(2048, 2048) float32 layers' state dict, 384 MiB of weights, and
  lora_r16/        a PEFT LoRA adapter of it as save_pretrained lays it out (adapter_config.json,
                   adapter_model.bin), r=16 on every layer (what `convert --merge-lora` merges)
  seed_*.pth       the seed's small files (checkpoint, inference package, full model), copied from
                   resources/examples

Files are written once and kept; a file already there with the right size is not rewritten.
"""
import argparse
import collections
import os
import shutil
import sys
import zipfile

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

import torch  # noqa: E402


def state_dict(count, elements, seed):
    g = torch.Generator().manual_seed(seed)
    side = int(elements ** 0.5)
    shape = (side, elements // side)
    return collections.OrderedDict(('layers.%d.weight' % i, torch.randn(shape, generator=g)) for i in range(count))


def tuned(sd, seed):
    g = torch.Generator().manual_seed(seed)
    return collections.OrderedDict((k, v + 1e-3 * torch.randn(v.shape, generator=g)) for k, v in sd.items())


def training_checkpoint(seed):
    g = torch.Generator().manual_seed(seed)
    model = collections.OrderedDict(('layers.%d.weight' % i, torch.randn(1152, 1152, generator=g)) for i in range(64))
    state = {}
    for i, t in enumerate(model.values()):
        state[i] = {'step': torch.tensor(100.0), 'exp_avg': torch.randn(t.shape, generator=g) * 1e-3,
                    'exp_avg_sq': torch.rand(t.shape, generator=g) * 1e-6}
    optimizer = {'state': state, 'param_groups': [{'lr': 1e-3, 'betas': (0.9, 0.999), 'eps': 1e-8, 'weight_decay': 0,
                                                   'amsgrad': False, 'maximize': False, 'foreach': None,
                                                   'capturable': False, 'differentiable': False, 'fused': False,
                                                   'params': list(range(64))}]}
    return {'epoch': 12, 'model_state_dict': model, 'optimizer_state_dict': optimizer, 'train_loss': 0.31,
            'val_loss': 0.35, 'model_config': {'layers': 64, 'width': 1152}, 'timestamp': '2026-01-01T00:00:00',
            'pytorch_version': torch.__version__.split('+')[0]}


def deflate_copy(src, dst):
    """`src` re-zipped with every record deflated, as a re-zipping tool writes it; streamed."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, 'w', compression=zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            copy = zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0))
            copy.compress_type = zipfile.ZIP_DEFLATED
            with zin.open(info) as r, zout.open(copy, 'w', force_zip64=True) as w:
                shutil.copyfileobj(r, w, 16 << 20)


def deflated_storages(count, mib, path):
    """`count` float32 storages of `mib` MiB, each one value (deflate packs it ~1000:1), re-zipped."""
    n = mib * (1 << 20) // 4
    plain = path + '.plain'
    torch.save(collections.OrderedDict(('layers.%d.weight' % i, torch.full((n // 1024, 1024), 0.25 * (i + 1)))
                                       for i in range(count)), plain)
    deflate_copy(plain, path)
    os.remove(plain)


def many_metadata(count, path):
    """A safetensors file whose header is `count` short __metadata__ entries ('"k":"",' 12 bytes
    each) and one float32 tensor: a hostile header just under the 100 MB limit."""
    import json
    import string
    import struct
    digits = string.digits + string.ascii_letters
    names = []
    for i in range(count):
        k = ''
        for _ in range(6):
            i, r = divmod(i, len(digits))
            k += digits[r]
        names.append(k)
    meta = json.dumps(dict.fromkeys(names, ''), separators=(',', ':'))
    header = ('{"__metadata__":' + meta + ',"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}').encode()
    header += b' ' * (-len(header) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(header)) + header + bytes(16))


def lora_model(path):
    """A base of 24 Linear(2048, 2048) layers and a r=16 LoRA adapter of every one of them, the
    adapter's keys as PEFT's get_peft_model_state_dict names them (B non-zero, as after training)."""
    import json
    g = torch.Generator().manual_seed(8)
    base = collections.OrderedDict()
    adapter = collections.OrderedDict()
    for i in range(24):
        base['layers.%d.weight' % i] = torch.randn(2048, 2048, generator=g) * 0.02
        base['layers.%d.bias' % i] = torch.zeros(2048)
        module = 'base_model.model.layers.%d' % i
        adapter[module + '.lora_A.weight'] = torch.randn(16, 2048, generator=g) * 0.01
        adapter[module + '.lora_B.weight'] = torch.randn(2048, 16, generator=g) * 0.01
    torch.save(base, path)
    folder = os.path.join(os.path.dirname(path), 'lora_r16')
    os.makedirs(folder, exist_ok=True)
    torch.save(adapter, os.path.join(folder, 'adapter_model.bin'))
    with open(os.path.join(folder, 'adapter_config.json'), 'w') as f:
        json.dump({'peft_type': 'LORA', 'r': 16, 'lora_alpha': 32, 'target_modules': ['layers.%d' % i for i in range(24)],
                   'fan_in_fan_out': False, 'bias': 'none'}, f)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--out', default=os.path.join(HERE, 'data'))
    ap.add_argument('--skip-4g', action='store_true', help='leave out the 4 GiB file')
    ap.add_argument('--only', action='append', default=[], help='only the files whose name holds this text')
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    mib = 1 << 20
    plan = [
        ('sd_100m.pth', lambda: state_dict(64, 100 * mib // 4 // 64, 1)),
        ('sd_1g.pth', lambda: state_dict(64, 1024 * mib // 4 // 64, 2)),
        ('sd_1g_tuned.pth', lambda: tuned(state_dict(64, 1024 * mib // 4 // 64, 2), 6)),
        ('sd_20k.pth', lambda: state_dict(20000, 64, 3)),
        ('train_1g.pth', lambda: training_checkpoint(4)),
    ]
    if not a.skip_4g:
        plan.append(('sd_4g.pth', lambda: state_dict(64, 4096 * mib // 4 // 64, 5)))
    plan.append(('big_1g.pth', lambda: {'w': torch.randn(16384, 16384, generator=torch.Generator().manual_seed(7))}))
    plan.append(('deflated_4x1g.pth', lambda path: deflated_storages(4, 1024, path)))
    plan.append(('st_meta_8m.safetensors', lambda path: many_metadata(8_000_000, path)))
    plan.append(('lora_base_400m.pth', lora_model))
    for name, make in plan:
        if a.only and not any(o in name for o in a.only):
            continue
        path = os.path.join(a.out, name)
        if os.path.exists(path + '.done'):
            print('kept    %s' % path)
            continue
        if name.startswith(('deflated', 'st_meta', 'lora')):
            make(path)
        else:
            obj = make()
            torch.save(obj, path)
            del obj
        open(path + '.done', 'w').close()
        print('wrote   %s (%.1f MiB)' % (path, os.path.getsize(path) / mib))
    for name in ('simple_nn_checkpoint.pth', 'simple_nn_inference.pth', 'simple_nn_inference_metadata.json',
                 'simple_nn_full_model.pth'):
        src = os.path.join(ROOT, 'resources', 'examples', name)
        dst = os.path.join(a.out, 'seed_' + name[len('simple_nn_'):] if name.startswith('simple_nn_') else name)
        if name.endswith('.json'):
            dst = os.path.join(a.out, 'seed_inference_metadata.json')
        shutil.copyfile(src, dst)
    return 0


if __name__ == '__main__':
    sys.exit(main())
