#!/usr/bin/env python3
"""Optimizer files and optimizer mappings judged by PyTorch, on files torch 1.13 writes here:
- several param groups: a name is given only where it is certain (a shape one weight alone has),
  and every name given is the one model.named_parameters() gives that parameter object;
- an optimizer's state dict saved alone (Hugging Face Trainer's optimizer.pt), or the optimizer
  pickled whole, is an optimizer, not weights: info says so, convert refuses;
- DeepSpeed ZeRO-3 model states (empty placeholders under `module`): not taken for weights, info
  says where the weights are, convert refuses; ZeRO-2's fp16 model states stay weights;
- DeepSpeed ZeRO optimizer partitions: the torch optimizer inside is found and said to be over flat
  fp32 groups, with the groups' sizes and names as the file's param_slice_mappings give them."""
import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, '..', 'fixtures'))
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import deepspeed_layouts  # noqa: E402
from results import Results  # noqa: E402


def run(ckpt, *args):
    return subprocess.run([ckpt, *args], capture_output=True, text=True, timeout=120)


def info_json(ckpt, path):
    r = run(ckpt, 'info', path, '--json')
    return json.loads(r.stdout) if r.returncode == 0 else {'error': r.stderr}


def names_in_id_order(model, opt):
    name_of = {id(q): n for n, q in model.named_parameters()}
    return [name_of[id(q)] for g in opt.param_groups for q in g['params']]


def certain_names(model, opt):
    """What PyTorch's own objects prove of each id without knowing how the user built the groups:
    its name where its state has a shape that no other parameter of the model has, else None."""
    shapes = [tuple(q.shape) for q in model.parameters()]
    sd = opt.state_dict()
    ids = [i for g in sd['param_groups'] for i in g['params']]
    out = []
    for i, name in zip(ids, names_in_id_order(model, opt)):
        state = sd['state'].get(i, {})
        shown = [tuple(v.shape) for v in state.values() if torch.is_tensor(v) and v.dim() > 0]
        out.append(name if shown and shapes.count(shown[0]) == 1 else None)
    return out


class Swapped(nn.Module):
    """The reviewer's file: the head registered first, given to the optimizer second."""

    def __init__(self):
        super().__init__()
        self.head = nn.Linear(16, 16)
        self.backbone = nn.Linear(16, 16)


class LinearNorm(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(16, 16)
        self.ln = nn.LayerNorm(16)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Linear(8, 16)
        self.norm = nn.LayerNorm(16)
        self.head = nn.Linear(16, 4)


def group_runs():
    """[(label, model, optimizer)] with several param groups, each optimizer after one step."""
    runs = []
    torch.manual_seed(1)
    m = Swapped()
    runs.append(('head registered first, backbone group first', m,
                 torch.optim.AdamW([{'params': m.backbone.parameters(), 'lr': 1e-4},
                                    {'params': m.head.parameters(), 'lr': 1e-3}])))
    # Weights apart from biases and norms: [lin.weight, ln.weight], [lin.bias, ln.bias] fits the
    # layers lin and ln as well, which named lin.bias after ln.weight, "certainly".
    torch.manual_seed(2)
    m = LinearNorm()
    runs.append(('weights and biases in two groups', m,
                 torch.optim.AdamW([{'params': [m.lin.weight, m.ln.weight], 'weight_decay': 0.01},
                                    {'params': [m.lin.bias, m.ln.bias], 'weight_decay': 0.0}])))
    torch.manual_seed(5)
    m = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 3))
    for q in m[0].parameters():
        q.requires_grad = False
    runs.append(('frozen first layer, head group first', m,
                 torch.optim.SGD([{'params': m[4].parameters(), 'lr': 1e-2},
                                  {'params': m[2].parameters(), 'lr': 1e-3}], momentum=0.9)))
    torch.manual_seed(6)
    m = Net()
    decay = [q for n, q in m.named_parameters() if n.endswith('weight') and 'norm' not in n]
    rest = [q for n, q in m.named_parameters() if not (n.endswith('weight') and 'norm' not in n)]
    runs.append(('Lightning-style decay and no decay', m,
                 torch.optim.AdamW([{'params': decay, 'weight_decay': 0.01}, {'params': rest, 'weight_decay': 0.0}])))
    torch.manual_seed(7)
    m = nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 3))
    runs.append(('distinct shapes, head group first', m,
                 torch.optim.Adam([{'params': m[1].parameters(), 'lr': 1e-2}, {'params': m[0].parameters()}])))
    torch.manual_seed(8)
    m = nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 3))
    runs.append(('no state tensors, head group first', m,
                 torch.optim.SGD([{'params': m[1].parameters(), 'lr': 1e-2}, {'params': m[0].parameters()}], lr=0.1)))
    for _, model, opt in runs:
        for q in model.parameters():
            if q.requires_grad:
                q.grad = torch.randn_like(q)
        opt.step()
    return runs


def check_groups(ckpt, tmp, res):
    for label, model, opt in group_runs():
        path = os.path.join(tmp, 'groups_%s.pth' % label.replace(' ', '_').replace(',', ''))
        torch.save({'model': model.state_dict(), 'optimizer': opt.state_dict(), 'epoch': 1}, path)
        o = info_json(ckpt, path).get('optimizer') or {}
        got = [p['name'] for p in o.get('parameters', [])]
        truth = names_in_id_order(model, opt)
        want = certain_names(model, opt)
        mapping = o.get('mapping', {})
        res.check(len(got) == len(truth) and all(g is None or g == t for g, t in zip(got, truth)),
                  '%s: every name given is PyTorch\'s' % label, '%s vs %s' % (got, truth))
        res.check(got == want, '%s: named exactly where the shapes prove it' % label, '%s vs %s' % (got, want))
        res.check(mapping.get('certain') is (None not in want), '%s: certain only when all are named' % label,
                  '%r' % mapping)
        if None in want:
            res.check('several param groups' in mapping.get('note', ''), '%s: the note says why some are unnamed' % label,
                      '%r' % mapping)
        # Each group's hyperparameters as torch keeps them: torch hands every group the same betas
        # tuple from its defaults, and each group shows its numbers, not a reference to another's.
        def plain(v):
            return [plain(x) for x in v] if isinstance(v, (list, tuple)) else v
        theirs = [{k: plain(v) for k, v in g.items() if k != 'params'} for g in opt.state_dict()['param_groups']]
        ours = [{k: v for k, v in g.items() if k != 'params'} for g in o.get('param_groups', [])]
        res.check(ours == theirs, '%s: info --json param groups as torch keeps them' % label, '%r vs %r' % (ours, theirs))
        # The text output says the mapping is uncertain where it is.
        r = run(ckpt, 'info', path)
        res.check(('parameter names (uncertain)' in r.stdout) == (None in want), '%s: info text' % label, r.stdout[-400:])


class TinyBert(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(30, 8)
        self.layers = nn.ModuleList([nn.Linear(8, 8) for _ in range(2)])
        self.ln = nn.LayerNorm(8)


def check_optimizer_alone(ckpt, tmp, res):
    torch.manual_seed(3)
    m = TinyBert()
    opt = torch.optim.AdamW(m.parameters(), lr=5e-5)
    for q in m.parameters():
        q.grad = torch.randn_like(q)
    opt.step()
    sd = opt.state_dict()
    ids = [i for g in sd['param_groups'] for i in g['params']]
    folder = os.path.join(tmp, 'checkpoint-500')
    os.makedirs(folder, exist_ok=True)
    for label, name, content in (('optimizer.pt', 'optimizer.pt', sd), ('pickled optimizer', 'optim_object.pt', opt)):
        path = os.path.join(folder, name)
        torch.save(content, path)
        j = info_json(ckpt, path)
        if not res.check('error' not in j, '%s: info' % label, j.get('error', '')):
            continue
        res.check(j.get('kind') == 'optimizer_state', '%s: kind' % label, '%r' % j.get('kind'))
        res.check(not j.get('state_dict'), '%s: no weights taken from the optimizer\'s state' % label,
                  '%r' % (j.get('state_dict') or {}).get('path'))
        o = j.get('optimizer') or {}
        res.check(o.get('path') == [] and o.get('state', {}).get('count') == len(sd['state']) and
                  len(o.get('param_groups', [])) == len(sd['param_groups']), '%s: the optimizer is the file' % label,
                  '%r' % {k: o.get(k) for k in ('path', 'state')})
        res.check([p['id'] for p in o.get('parameters', [])] == ids, '%s: ids as state_dict() numbers them' % label, '')
        ok = all(p.get('state', {}).get(k, {}).get('__tensor__', {}).get('shape') == list(v.shape)
                 for p in o.get('parameters', []) for k, v in sd['state'][p['id']].items() if torch.is_tensor(v))
        res.check(ok, '%s: each parameter\'s state as torch reads it' % label, '')
        r = run(ckpt, 'info', path)
        res.check('Optimizer:' in r.stdout and 'also weights under' not in r.stdout and 'state/0' not in r.stdout,
                  '%s: info text shows an optimizer, no weights' % label, r.stdout[:800])
        res.check('Optimizer: (root) \u2014 AdamW, ' in r.stdout, '%s: info text says the optimizer is the root' % label,
                  r.stdout[:800])
        res.check('  parameter ids: ' in r.stdout and 'uncertain' not in r.stdout,
                  '%s: info text says its parameters are known by id, not that names are uncertain' % label,
                  r.stdout[-800:])
        # Its state and param groups are the optimizer's, not listed again as metadata.
        res.check(not any(k in (j.get('metadata') or {}) for k in ('state', 'param_groups', 'defaults')),
                  '%s: the optimizer is not metadata too' % label, '%r' % list(j.get('metadata') or {}))
        for target in ('safetensors', 'checkpoint'):
            out = os.path.join(tmp, 'from_%s.%s' % (name, target))
            r = run(ckpt, 'convert', path, '--to', target, '-o', out)
            res.check(r.returncode != 0 and path in r.stderr and not os.path.exists(out),
                      '%s: convert --to %s is refused, naming the file' % (label, target), r.stdout + r.stderr)
            res.check('no model weights to convert' in r.stderr and 'optimizer' in r.stderr,
                      '%s: convert --to %s says why: the optimizer alone' % (label, target), r.stderr)


def check_zero3(ckpt, tmp, res):
    model_files, optim_files, truth = deepspeed_layouts.write_zero3(os.path.join(tmp, 'ds_z3'))
    theirs = torch.load(model_files[0], map_location='cpu', weights_only=False)
    empty = sorted(k for k, v in theirs['module'].items() if v.numel() == 0)
    res.check(empty == truth['placeholders'], 'ZeRO-3: the generator wrote placeholders', '%s' % empty)
    path = model_files[0]
    j = info_json(ckpt, path)
    if not res.check('error' not in j, 'ZeRO-3 model states: info', j.get('error', '')):
        return
    res.check(not j.get('state_dict'), 'ZeRO-3 model states: placeholders are not the model\'s weights',
              '%r' % (j.get('state_dict') or {}).get('path'))
    r = run(ckpt, 'info', path)
    said = [w for w in r.stdout.splitlines() if w.startswith('Warning:') and 'placeholder' in w]
    res.check(len(said) == 1 and '%d empty placeholders' % len(empty) in said[0] and '_optim_states.pt' in said[0] and
              'zero_to_fp32' in said[0] and 'stage 3' in said[0],
              'ZeRO-3 model states: info says what they are and where the weights are', r.stdout[-1200:])
    res.check('Parameters: 0' not in r.stdout, 'ZeRO-3 model states: no parameter count of 0', r.stdout[:600])
    for target in ('safetensors', 'checkpoint'):
        out = os.path.join(tmp, 'z3.' + target)
        r = run(ckpt, 'convert', path, '--to', target, '-o', out)
        res.check(r.returncode != 0 and path in r.stderr and not os.path.exists(out),
                  'ZeRO-3 model states: convert --to %s is refused, naming the file' % target, r.stdout + r.stderr)
        res.check('no model weights to convert' in r.stderr and 'zero_to_fp32' in r.stderr,
                  'ZeRO-3 model states: convert --to %s says why and where the weights are' % target, r.stderr)
    # Its optimizer partitions: found, and said to be stage 3 flat groups of this rank's part.
    for rank, optim in enumerate(optim_files):
        sd = torch.load(optim, map_location='cpu', weights_only=False)['optimizer_state_dict']
        o = info_json(ckpt, optim).get('optimizer') or {}
        note = o.get('mapping', {}).get('note', '')
        res.check(o.get('path') == ['optimizer_state_dict', 'optimizer_state_dict'] and
                  o.get('state', {}).get('count') == len(sd['optimizer_state_dict']['state']),
                  'ZeRO-3 optim states %d: the torch optimizer inside is found' % rank, '%r' % o.get('path'))
        sizes = '; '.join('group %d: %d elements' % (g, f.numel()) for g, f in enumerate(sd['fp32_flat_groups']))
        res.check('DeepSpeed ZeRO stage 3 partition' in note and "one rank's part of %d" % len(optim_files) in note and
                  sizes in note and 'zero_to_fp32.py' in note,
                  'ZeRO-3 optim states %d: the note says what the ids are' % rank, note)


def check_zero2(ckpt, tmp, res):
    model_states, optim_states, truth = deepspeed_layouts.write_zero2(os.path.join(tmp, 'ds_z2'))
    # The fp16 weights of stage 1/2 are the model's weights, placeholders aside.
    j = info_json(ckpt, model_states)
    got = [t['name'] for t in (j.get('state_dict') or {}).get('tensors', [])]
    res.check(got == truth['module'], 'ZeRO-2 model states: the module is the state dict', '%s' % got[:4])
    res.check(not any('placeholder' in w for w in j.get('warnings', [])), 'ZeRO-2 model states: no placeholder warning',
              '%r' % j.get('warnings'))

    theirs = torch.load(optim_states, map_location='cpu', weights_only=False)
    base = theirs['optimizer_state_dict']['base_optimizer_state']
    j = info_json(ckpt, optim_states)
    o = j.get('optimizer') or {}
    res.check(j.get('kind') == 'optimizer_state', 'ZeRO-2 optim states: kind', '%r' % j.get('kind'))
    res.check(o.get('path') == ['optimizer_state_dict', 'base_optimizer_state'] and
              o.get('state', {}).get('count') == len(base['state']) and
              len(o.get('param_groups', [])) == len(base['param_groups']),
              'ZeRO-2 optim states: the torch optimizer inside is found', '%r' % {k: o.get(k) for k in ('path', 'state')})
    res.check([p['id'] for p in o.get('parameters', [])] == [i for g in base['param_groups'] for i in g['params']],
              'ZeRO-2 optim states: its ids', '')
    note = o.get('mapping', {}).get('note', '')
    res.check('DeepSpeed ZeRO stage %d partition' % truth['stage'] in note and
              '%d flat fp32 groups' % len(truth['groups']) in note, 'ZeRO-2 optim states: stage and groups', note)
    for g, group in enumerate(truth['groups']):
        numel = theirs['optimizer_state_dict']['single_partition_of_fp32_groups'][g].numel()
        names = group['names']
        shown = ', '.join(names[:6]) + (' and %d more' % (len(names) - 6) if len(names) > 6 else '')
        res.check('group %d: %d elements of %d parameters (%s)' % (g, numel, len(names), shown) in note,
                  'ZeRO-2 optim states: group %d as param_slice_mappings places it' % g, note)
    res.check(all(p.get('name') is None for p in o.get('parameters', [])),
              'ZeRO-2 optim states: no flat group named as a parameter', '')
    r = run(ckpt, 'info', optim_states)
    res.check('Optimizer: optimizer_state_dict/base_optimizer_state' in r.stdout and 'DeepSpeed ZeRO stage 2' in r.stdout,
              'ZeRO-2 optim states: info text', r.stdout[-1500:])
    out = os.path.join(tmp, 'z2opt.safetensors')
    r = run(ckpt, 'convert', optim_states, '--to', 'safetensors', '-o', out)
    res.check(r.returncode != 0 and optim_states in r.stderr and not os.path.exists(out),
              'ZeRO-2 optim states: convert is refused, naming the file', r.stdout + r.stderr)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--ckpt', required=True)
    ap.add_argument('--fixtures')
    a = ap.parse_args()
    res = Results()
    tmp = tempfile.mkdtemp(prefix='ckpt-optimizer-files-')
    deepspeed_layouts.install_stubs(os.path.join(tmp, 'stubs'))
    check_groups(a.ckpt, tmp, res)
    check_optimizer_alone(a.ckpt, tmp, res)
    check_zero3(a.ckpt, tmp, res)
    check_zero2(a.ckpt, tmp, res)
    return res.finish()


if __name__ == '__main__':
    sys.exit(main())
