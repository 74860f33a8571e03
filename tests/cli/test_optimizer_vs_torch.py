#!/usr/bin/env python3
"""`ckpt info --json`'s optimizer parameters judged by PyTorch: the optimizer's ids are mapped to
the names model.named_parameters() gives (recorded by the fixture generator), buffers skipped, and
each parameter's state (momentum buffers, exp_avg, step) matches what torch.load reads."""
import argparse
import collections
import json
import os
import subprocess
import tempfile
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, '..', 'fixtures'))
import torch  # noqa: E402
from optimizer_fixtures import (frozen_run, names_in_id_order, shape_mapped_runs, undecided_runs,  # noqa: E402
                                with_param_names, without_param_names)
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
    check_recorded_names(a.ckpt, a.fixtures, tmp, res)
    check_reordered_groups(a.ckpt, tmp, res)
    check_stateless(a.ckpt, tmp, res)
    check_shape_notes(a.ckpt, a.fixtures, res)
    check_undecided(a.ckpt, tmp, res)
    check_tied(a.ckpt, tmp, res)
    check_pickled_optimizer(a.ckpt, tmp, res)
    check_not_optimizer_states(a.ckpt, tmp, res)
    return res.finish()


def check_not_optimizer_states(ckpt, tmp, res):
    """A dict under an optimizer's key that torch.optim cannot resume from (only one of 'state' and
    'param_groups', or either of the wrong kind): no optimizer is read, and info says why, naming the
    key and what is wrong. PyTorch's load_state_dict refusing each is what makes it not one; a dict
    of settings under such a key (neither entry) is no optimizer either, and is not remarked on."""
    torch.manual_seed(0)
    m = torch.nn.Linear(3, 2)
    opt = torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
    m(torch.randn(4, 3)).sum().backward()
    opt.step()
    whole = opt.state_dict()
    cases = [
        ('state only', 'optimizer_state_dict', {'state': whole['state']}, "has 'state' but no 'param_groups'"),
        ('groups only', 'optimizer', {'param_groups': whole['param_groups']}, "has 'param_groups' but no 'state'"),
        ('state a list', 'optim', {'state': [1, 2], 'param_groups': whole['param_groups']}, "'state' that is a list"),
        ('groups a dict', 'optimizer_state', {'state': whole['state'], 'param_groups': {'lr': 0.1}},
         "'param_groups' that is a dict"),
        ('settings', 'optimizer', {'lr': 0.1, 'momentum': 0.9}, None),
    ]
    for label, key, value, says in cases:
        path = os.path.join(tmp, 'not_optimizer_%s.pth' % label.replace(' ', '_'))
        torch.save({'model_state_dict': m.state_dict(), key: value, 'epoch': 3}, path)
        try:
            torch.optim.SGD(torch.nn.Linear(3, 2).parameters(), lr=0.1, momentum=0.9).load_state_dict(value)
            resumes = True
        except Exception:  # KeyError, TypeError, ValueError: whatever torch raises, it resumes nothing
            resumes = False
        res.check(not resumes, '%s: PyTorch refuses it as an optimizer state' % label)
        r = subprocess.run([ckpt, 'info', path, '--json'], capture_output=True, text=True, timeout=60)
        doc = json.loads(r.stdout) if r.returncode == 0 else {}
        why = doc.get('optimizer_not_read')
        res.check(r.returncode == 0 and doc.get('optimizer') is None, '%s: no optimizer read' % label, r.stderr)
        if says is None:
            res.check(why is None, '%s: not remarked on' % label, repr(why))
            continue
        res.check(why is not None and why.startswith("'%s' " % key) and says in why, '%s: says why' % label, repr(why))
        text = subprocess.run([ckpt, 'info', path], capture_output=True, text=True, timeout=60).stdout
        res.check('Optimizer: none read: ' + (why or '?') in text, '%s: the text says it too' % label, text)
    # The whole state dict under the same key is read: the remark is about what is missing.
    path = os.path.join(tmp, 'optimizer_whole.pth')
    torch.save({'model_state_dict': m.state_dict(), 'optimizer_state_dict': whole}, path)
    r = subprocess.run([ckpt, 'info', path, '--json'], capture_output=True, text=True, timeout=60)
    doc = json.loads(r.stdout) if r.returncode == 0 else {}
    res.check(doc.get('optimizer') is not None and 'optimizer_not_read' not in doc, 'whole state dict: read', r.stdout[:300])


def check_shape_notes(ckpt, fixtures, res):
    """The fixtures mapped by shape (named and judged certain above): the note says where the
    optimizer's order is not the model's, and which of the model's parameters it does not hold."""
    for name, _, _ in shape_mapped_runs():
        path = os.path.join(fixtures, name)
        theirs = torch.load(path, map_location='cpu', weights_only=False)
        registered = list(theirs['model_state_dict'])  # Linear layers only: every entry is a parameter
        model = json.load(open(os.path.join(fixtures, 'expected.json')))['__optimizer__'][name]
        note = info_optimizer(ckpt, path).get('mapping', {}).get('note', '')
        left = [n for n in registered if n not in model]
        reordered = [registered.index(n) for n in model] != sorted(registered.index(n) for n in model)
        res.check(('not optimized: ' + ', '.join(left) in note) == bool(left), '%s: the note names the parameters '
                  'not optimized (%s)' % (name, ', '.join(left) or 'none'), note)
        res.check(('another order than the model registers them' in note) == reordered,
                  '%s: the note says whether the order is the model\'s' % name, note)


def same_shaped_layers(model, opt):
    """From PyTorch's model: for each set of layers with the same parameter shapes of which the
    optimizer holds some but not all, how many it holds and which they are."""
    held = {id(q) for g in opt.param_groups for q in g['params']}
    classes = collections.OrderedDict()
    for name, module in model.named_modules():
        own = list(module.parameters(recurse=False))
        if own:
            classes.setdefault(tuple(tuple(q.shape) for q in own), []).append((name, any(id(q) in held for q in own)))
    return [(sum(h for _, h in layers), [n for n, _ in layers]) for layers in classes.values()
            if 0 < sum(h for _, h in layers) < len(layers)]


def check_undecided(ckpt, tmp, res):
    """Files that cannot tell which parameter each id is: not certain, no guess shown as a name, and
    --drop leaves the optimizer's ids alone (PyTorch then refuses the state for the kept parameters
    instead of loading one layer's momentum as another's)."""
    for label, model, opt in undecided_runs():
        path = os.path.join(tmp, 'undecided_%s.pth' % label.replace(' ', '_').replace(',', ''))
        torch.save({'epoch': 1, 'model_state_dict': model.state_dict(), 'optimizer_state_dict': opt.state_dict()}, path)
        o = info_optimizer(ckpt, path)
        mapping = o.get('mapping', {})
        res.check(mapping.get('certain') is False, '%s: not certain' % label, '%r' % mapping)
        truth = names_in_id_order(model, opt)
        got = [p['name'] for p in o.get('parameters', [])]
        undecided = same_shaped_layers(model, opt)
        if undecided:
            # Which of the same-shaped layers it holds cannot be told: listed, their parameters unnamed.
            for count, layers in undecided:
                said = '%d of the %d layers %s' % (count, len(layers), ', '.join(layers))
                res.check(said in mapping.get('note', ''), '%s: the note lists the candidate layers (%s)' % (label, said),
                          mapping.get('note', ''))
            res.check(len(got) == len(truth) and None in got and all(g is None or g == t for g, t in zip(got, truth)),
                      '%s: the names given are PyTorch\'s, the undecided ones left out' % label, '%s vs %s' % (got, truth))
            continue
        res.check('several parameters share these shapes; names follow registration order' in mapping.get('note', ''),
                  '%s: the note says the names follow registration order' % label, '%r' % mapping)
        # --drop: the optimizer written whole, with a warning, not renumbered by guessed names.
        before = opt.state_dict()
        dropped = [n for n in model.state_dict() if n.startswith('2.')]
        out = os.path.join(tmp, 'dropped_undecided.pth')
        r = subprocess.run([ckpt, 'convert', path, '--to', 'checkpoint', '--drop', '2.*', '-o', out],
                           capture_output=True, text=True, timeout=60)
        if not res.check(r.returncode == 0, '%s: convert --drop' % label, r.stderr):
            continue
        res.check('optimizer_state_dict is written whole' in r.stdout + r.stderr, '%s: --drop warns' % label,
                  r.stdout + r.stderr)
        got_sd = torch.load(out, map_location='cpu', weights_only=False)
        after = got_sd['optimizer_state_dict']
        res.check(sorted(got_sd['model_state_dict']) == sorted(set(model.state_dict()) - set(dropped)) and
                  after['param_groups'][0]['params'] == before['param_groups'][0]['params'] and
                  all(torch.equal(after['state'][i]['momentum_buffer'], before['state'][i]['momentum_buffer'])
                      for i in before['state']),
                  '%s: --drop writes the optimizer as it was' % label, '%r' % after['param_groups'])
        kept = torch.nn.Linear(8, 8)
        try:
            torch.optim.SGD(kept.parameters(), lr=0.1, momentum=0.9).load_state_dict(after)
            refused = False
        except ValueError:
            refused = True
        res.check(refused, '%s: PyTorch refuses the whole state for the kept layer rather than take another '
                  'layer\'s momentum' % label, '')


def check_reordered_groups(ckpt, tmp, res):
    """A head given its own learning rate in a first param group: ids no longer follow the model's
    order. Same shapes: no mapping may be called certain. Shapes found once each: mapped by shape."""
    for label, widths, certain in (('same shapes', (4, 4, 4), False), ('distinct shapes', (4, 8, 3), True)):
        torch.manual_seed(2)
        m = torch.nn.Sequential(torch.nn.Linear(widths[0], widths[1]), torch.nn.Linear(widths[1], widths[2]))
        opt = torch.optim.Adam([{'params': m[1].parameters(), 'lr': 1e-2}, {'params': m[0].parameters(), 'lr': 1e-4}])
        m(torch.randn(2, widths[0])).sum().backward()
        opt.step()
        path = os.path.join(tmp, 'reordered_%s.pth' % label.replace(' ', '_'))
        torch.save({'model': m.state_dict(), 'optimizer': opt.state_dict()}, path)
        o = info_optimizer(ckpt, path)
        mapping = o.get('mapping', {})
        got = [p['name'] for p in o.get('parameters', [])]
        truth = names_in_id_order(m, opt)
        if certain:
            res.check(mapping.get('certain') is True and got == truth, 'groups out of model order, %s: mapped by shape' % label,
                      '%s vs %s %r' % (got, truth, mapping))
        else:
            res.check(mapping.get('certain') is False, 'groups out of model order, %s: not certain' % label,
                      '%s vs %s %r' % (got, truth, mapping))


def check_stateless(ckpt, tmp, res):
    """SGD without momentum keeps no state tensors: nothing tells its parameters apart, whatever
    their shapes, and the note says that rather than blaming shared shapes."""
    for label, widths in (('same shapes', (8, 8, 8)), ('distinct shapes', (4, 8, 3))):
        torch.manual_seed(3)
        m = torch.nn.Sequential(torch.nn.Linear(widths[0], widths[1]), torch.nn.Linear(widths[1], widths[2]))
        opt = torch.optim.SGD(m.parameters(), lr=0.1)
        m(torch.randn(2, widths[0])).sum().backward()
        opt.step()
        if any(torch.is_tensor(v) for st in opt.state_dict()['state'].values() for v in st.values()):
            res.check(False, 'stateless SGD, %s: torch kept state tensors after all' % label)
            continue
        path = os.path.join(tmp, 'stateless_%s.pth' % label.replace(' ', '_'))
        torch.save({'model': m.state_dict(), 'optimizer': opt.state_dict()}, path)
        mapping = info_optimizer(ckpt, path).get('mapping', {})
        res.check(mapping.get('certain') is False and 'keeps no state tensors' in mapping.get('note', ''),
                  'stateless SGD, %s: not certain, and says why' % label, '%r' % mapping)


def info_optimizer(ckpt, path):
    r = subprocess.run([ckpt, 'info', path, '--json'], capture_output=True, text=True, timeout=60)
    return json.loads(r.stdout)['optimizer'] if r.returncode == 0 else {'error': r.stderr}


def check_recorded_names(ckpt, fixtures, tmp, res):
    """Optimizers that recorded their parameters' names (the fixtures optimizer_param_names.pth and
    optimizer_fqn.pth, checked with the others above) are mapped by those names, certainly, where
    the shapes alone leave the mapping a guess."""
    m, opt, names = frozen_run()
    sd = opt.state_dict()
    path = os.path.join(tmp, 'frozen_plain.pth')
    torch.save({'model_state_dict': m.state_dict(), 'optimizer_state_dict': without_param_names(sd)}, path)
    o = info_optimizer(ckpt, path)
    res.check(o.get('mapping', {}).get('certain') is False, 'frozen layer of the same shape, no names: not certain', '%r' % o)

    # The model saved under DataParallel's prefix, which the optimizer's names do not carry.
    named = with_param_names(sd, names)
    path = os.path.join(tmp, 'frozen_param_names_module.pth')
    torch.save({'model_state_dict': {'module.' + k: v for k, v in m.state_dict().items()}, 'optimizer_state_dict': named}, path)
    o = info_optimizer(ckpt, path)
    got = [p['name'] for p in o.get('parameters', [])]
    res.check(o.get('mapping', {}).get('certain') is True and got == ['module.' + n for n in names],
              'param_names under module.: mapped through the prefix', '%s %r' % (got, o.get('mapping')))

    # A recorded name the weights do not have: said, and not certain.
    wrong = {'state': sd['state'], 'param_groups': [dict(named['param_groups'][0], param_names=['x'] + names[1:])]}
    path = os.path.join(tmp, 'frozen_param_names_wrong.pth')
    torch.save({'model_state_dict': m.state_dict(), 'optimizer_state_dict': wrong}, path)
    o = info_optimizer(ckpt, path)
    res.check(o.get('mapping', {}).get('certain') is False and 'not in the state dict' in o.get('mapping', {}).get('note', ''),
              'param_names naming a missing weight: not certain, and said', '%r' % o.get('mapping'))

    # --drop takes a dropped parameter's state out of both layouts.
    for label, src in (('param_names', 'optimizer_param_names.pth'), ('names as keys', 'optimizer_fqn.pth')):
        before = torch.load(os.path.join(fixtures, src), weights_only=False)['optimizer_state_dict']
        out = os.path.join(tmp, 'dropped_' + src)
        r = subprocess.run([ckpt, 'convert', os.path.join(fixtures, src), '--to', 'checkpoint', '--drop', '2.*', '-o', out],
                           capture_output=True, text=True, timeout=60)
        if not res.check(r.returncode == 0, '%s: convert --drop' % label, r.stderr):
            continue
        got = torch.load(out, weights_only=False)['optimizer_state_dict']
        group = got['param_groups'][0]
        if label == 'param_names':
            kept = group['params'] == [0, 1] and group['param_names'] == names[:2] and sorted(got['state']) == [0, 1]
            same = all(torch.equal(got['state'][i]['exp_avg'], before['state'][i]['exp_avg']) for i in (0, 1))
            # What PyTorch's own load_state_dict says of it, for an optimizer over the kept layer.
            kept_layer = torch.nn.Linear(4, 4)
            try:
                torch.optim.Adam(list(kept_layer.parameters())).load_state_dict(got)
                loaded = ''
            except (ValueError, KeyError) as e:
                loaded = str(e)
        else:
            kept = group['params'] == names[:2] and sorted(got['state']) == sorted(names[:2])
            same = all(torch.equal(got['state'][n]['exp_avg'], before['state'][n]['exp_avg']) for n in names[:2])
            loaded = ''
        res.check(kept and same and not loaded, "%s: --drop leaves the dropped parameters' state out" % label,
                  loaded or '%r / %r' % (got['param_groups'], list(got['state'])))

        # Prefix edits rename the weights; the names the optimizer recorded follow them.
        out = os.path.join(tmp, 'prefixed_' + src)
        r = subprocess.run([ckpt, 'convert', os.path.join(fixtures, src), '--to', 'checkpoint', '--add-prefix', 'net.', '-o', out],
                           capture_output=True, text=True, timeout=60)
        if not res.check(r.returncode == 0, '%s: convert --add-prefix' % label, r.stderr):
            continue
        got = torch.load(out, weights_only=False)
        group = got['optimizer_state_dict']['param_groups'][0]
        recorded = group['param_names'] if label == 'param_names' else group['params']
        state_keys = sorted(got['optimizer_state_dict']['state'])
        want = ['net.' + n for n in names]
        res.check(recorded == want and list(got['model_state_dict'])[2:] == want and
                  (state_keys == [0, 1, 2, 3] if label == 'param_names' else state_keys == sorted(want)),
                  '%s: --add-prefix renames the recorded names with the weights' % label, '%r %r' % (recorded, state_keys))
        o = info_optimizer(ckpt, out)
        res.check(o.get('mapping', {}).get('certain') is True and [p['name'] for p in o.get('parameters', [])] == want,
                  '%s: the renamed file maps certainly' % label, '%r' % o.get('mapping'))


class TiedLM(torch.nn.Module):
    """An embedding, a layer that can be pruned, and an output head that shares the embedding's weight."""

    def __init__(self, aux=True):
        super().__init__()
        self.emb = torch.nn.Embedding(20, 6)
        self.aux = torch.nn.Linear(6, 6) if aux else None
        self.head = torch.nn.Linear(6, 20, bias=False)
        self.head.weight = self.emb.weight

    def forward(self, x):
        h = self.emb(x)
        if self.aux is not None:
            h = self.aux(h)
        return self.head(h)


def check_tied(ckpt, tmp, res):
    """Tied weights (head.weight is emb.weight) are one parameter: model.parameters() gives it once,
    so the optimizer numbers it once. The ids map certainly, and --drop of another layer leaves an
    optimizer state that torch's Adam.load_state_dict takes for the pruned model."""
    torch.manual_seed(7)
    m = TiedLM()
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)  # one param group, as single_group.pth
    for _ in range(2):
        opt.zero_grad()
        m(torch.randint(0, 20, (3, 4))).sum().backward()
        opt.step()
    path = os.path.join(tmp, 'tied.pth')
    torch.save({'epoch': 1, 'model_state_dict': m.state_dict(), 'optimizer_state_dict': opt.state_dict()}, path)
    want = names_in_id_order(m, opt)
    o = info_optimizer(ckpt, path)
    got = [p['name'] for p in o.get('parameters', [])]
    res.check(got == want and o.get('mapping', {}).get('certain') is True, 'tied weights: ids mapped certainly',
              '%s != %s (%r)' % (got, want, o.get('mapping')))
    res.check('head.weight is emb.weight' in o.get('mapping', {}).get('note', ''), 'tied weights: the note says which',
              '%r' % o.get('mapping'))

    # The same from a pickled module tree, where the tied parameter is one object.
    full = os.path.join(tmp, 'tied_full.pth')
    torch.save({'model': m, 'optimizer': opt.state_dict()}, full)
    o = info_optimizer(ckpt, full)
    got = [p['name'] for p in o.get('parameters', [])]
    res.check(got == want and o.get('mapping', {}).get('certain') is True, 'tied weights in a module tree: ids mapped certainly',
              '%s != %s (%r)' % (got, want, o.get('mapping')))

    out = os.path.join(tmp, 'tied_pruned.pth')
    r = subprocess.run([ckpt, 'convert', path, '--to', 'checkpoint', '--drop', 'aux.*', '-o', out],
                       capture_output=True, text=True, timeout=60)
    if not res.check(r.returncode == 0, 'tied weights: convert --drop aux.*', r.stderr):
        return
    got = torch.load(out, weights_only=False)
    pruned = TiedLM(aux=False)
    pruned.load_state_dict(got['model_state_dict'])
    opt2 = torch.optim.Adam(pruned.parameters(), lr=1e-2)
    try:
        opt2.load_state_dict(got['optimizer_state_dict'])
        loaded = ''
    except (ValueError, KeyError) as e:
        loaded = str(e)
    if not res.check(not loaded, 'tied weights: Adam.load_state_dict takes the pruned optimizer state', loaded):
        return
    before = opt.state_dict()['state']
    kept = [i for i, n in enumerate(want) if not n.startswith('aux.')]
    after = opt2.state_dict()['state']
    same = sorted(after) == list(range(len(kept))) and all(
        torch.equal(after[j]['exp_avg'], before[i]['exp_avg']) and
        torch.equal(after[j]['exp_avg_sq'], before[i]['exp_avg_sq']) for j, i in enumerate(kept))
    res.check(same, "tied weights: the kept parameters' state is carried unchanged", '%r' % sorted(after))


class Optim:
    """OpenNMT-py's onmt.Optim of 2017: a wrapper that keeps the torch optimizer as an attribute."""

    def __init__(self, optimizer):
        self.method = 'adam'
        self.lr = 1e-3
        self.optimizer = optimizer


def check_pickled_optimizer(ckpt, tmp, res):
    """An optimizer instance pickled whole (torch.save of the optimizer, or of an object that holds
    one) is read as its state_dict() would give it: the same ids, state and step."""
    torch.manual_seed(8)
    m = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    opt = torch.optim.Adam([{'params': m[2].parameters(), 'lr': 1e-3}, {'params': m[0].parameters(), 'lr': 1e-4}])
    for _ in range(3):
        opt.zero_grad()
        m(torch.randn(2, 4)).sum().backward()
        opt.step()
    sd = opt.state_dict()
    for label, content, where in (('held by an object', {'model': m.state_dict(), 'optim': Optim(opt)}, 'optim/optimizer'),
                                  ('under optimizer', {'model': m.state_dict(), 'optimizer': opt}, 'optimizer')):
        path = os.path.join(tmp, 'pickled_optimizer_%s.pth' % where.replace('/', '_'))
        torch.save(content, path)
        o = info_optimizer(ckpt, path)
        if not res.check(o and 'error' not in o, 'pickled optimizer %s: found' % label, '%r' % o):
            continue
        res.check('/'.join(o['path']) == where, 'pickled optimizer %s: its path' % label, '%r' % o['path'])
        res.check(o['state']['count'] == len(sd['state']), 'pickled optimizer %s: parameters with state' % label,
                  '%r vs %d' % (o['state'], len(sd['state'])))
        res.check(len(o['param_groups']) == len(sd['param_groups']), 'pickled optimizer %s: param groups' % label, '')
        ids = [i for g in sd['param_groups'] for i in g['params']]
        res.check([p['id'] for p in o['parameters']] == ids, 'pickled optimizer %s: ids as state_dict() numbers them' % label,
                  '%r' % [p['id'] for p in o['parameters']])
        want = names_in_id_order(m, opt)
        res.check([p['name'] for p in o['parameters']] == want and o['mapping']['certain'] is True,
                  'pickled optimizer %s: names' % label, '%r %r' % ([p['name'] for p in o['parameters']], o['mapping']))
        for p in o['parameters']:
            theirs = sd['state'][p['id']]
            mine = p.get('state', {})
            ok = all(isinstance(mine.get(k), dict) and mine[k]['__tensor__']['shape'] == list(v.shape) for k, v in theirs.items())
            res.check(ok, 'pickled optimizer %s: state of %s' % (label, p['name']), '%r' % mine)
        r = subprocess.run([ckpt, 'info', path], capture_output=True, text=True, timeout=60)
        step = max(int(s['step']) for s in sd['state'].values())
        res.check('%d parameter states, step %d' % (len(sd['state']), step) in r.stdout,
                  'pickled optimizer %s: info says its states and step' % label, r.stdout[-600:])

    # The OpenNMT checkpoint of 2017 in the shared corpus (torch 0.2: state keyed by the parameter
    # tensors, step a plain int). Read with ckpt only, never in Python; its figures are the
    # reviewer's, read from the file's pickle (14 parameter states, step 1410, exp_avg/exp_avg_sq).
    corpus = os.path.join(os.environ.get('CKPT_CORPUS_DIR', os.path.join(HERE, '..', '..', '..', 'shared', 'corpus', 'files')),
                          'onmt_test_model2_2017-09.pt')
    if os.path.exists(corpus):
        o = info_optimizer(ckpt, corpus)
        ok = o and 'error' not in o and '/'.join(o['path']) == 'optim/optimizer' and o['state']['count'] == 14 and \
            sorted(o['state']['keys']) == ['exp_avg', 'exp_avg_sq', 'step'] and len(o['parameters']) == 14
        res.check(ok, 'OpenNMT 2017 corpus checkpoint: its pickled Adam is read', '%r' % (o if not ok else ''))
        r = subprocess.run([ckpt, 'info', corpus], capture_output=True, text=True, timeout=60)
        res.check('14 parameter states, step 1410' in r.stdout, 'OpenNMT 2017 corpus checkpoint: states and step', r.stdout[-800:])
    else:
        print('note: %s is absent; the OpenNMT corpus check is not run' % corpus)


if __name__ == '__main__':
    sys.exit(main())
