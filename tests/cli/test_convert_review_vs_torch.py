#!/usr/bin/env python3
"""`ckpt convert` after a reviewer's 66 conversions, judged by PyTorch 1.13. Every input is made here
by torch in a temporary folder:
- float16/bfloat16 weights export to TorchScript in their own dtype (torch.jit.script(model.half())
  holds them so), and run as torch's module does; weights mixing float16 with float32 are refused
  at plan time, offering --dtype;
- Ctrl-C, SIGTERM and SIGHUP during a write leave no temporary file in the output folder;
- an EMA weight set with the model's keys gets the model's key edits and cast; one with other keys
  is carried with a warning; optimizer state keeps its dtype under --dtype;
- weights -> safetensors -> weights keeps the state dict's order, and the round trip converts on to
  a full model as the source does;
- the plan says that weights moved from 'model' to 'model_state_dict';
- --preprocessing is checked against the model's inputs (and a zero std);
- --json prints a failure as JSON, keeping the exit status."""
import argparse
import collections
import copy
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import torch  # noqa: E402
from torch import nn  # noqa: E402
from results import Results  # noqa: E402
from test_convert_vs_torch import load_weights_only, read_safetensors, same_tensor  # noqa: E402


class SimpleNN(nn.Module):
    """The seed's model: its state dict's order (fc1, bn, fc2) is not its names' sorted order."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(10, 50)
        self.bn = nn.BatchNorm1d(50)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(50, 2)

    def forward(self, x):
        return self.fc2(self.relu(self.bn(self.fc1(x))))


def trained_simple():
    torch.manual_seed(0)
    m = SimpleNN()
    m.train()
    for _ in range(3):
        m(torch.randn(8, 10))
    return m.eval()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--ckpt', required=True)
    ap.add_argument('--fixtures', required=False)
    a = ap.parse_args()
    res = Results()
    out = tempfile.mkdtemp(prefix='ckpt-convert-review-')
    ckpt = a.ckpt

    def run(*args, timeout=300):
        return subprocess.run([ckpt, *args], capture_output=True, text=True, timeout=timeout)

    def convert(src, *args):
        r = run('convert', src, *args, '--json')
        try:
            doc = json.loads(r.stdout)
        except ValueError:
            doc = None
        return r, doc

    # --- 1. float16 / bfloat16 weights to TorchScript, in their own dtype ------------------------
    torch.manual_seed(1)
    seq = nn.Sequential(nn.Linear(10, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 3))
    seq.train()
    for _ in range(3):
        seq(torch.randn(8, 10))
    seq.eval()
    for dtype, tag in ((torch.float16, 'fp16'), (torch.bfloat16, 'bf16')):
        src_model = copy.deepcopy(seq).to(dtype)  # as model.half() casts it
        src = os.path.join(out, 'seq_%s.pth' % tag)
        torch.save(src_model, src)
        dest = os.path.join(out, 'seq_%s_ts.pt' % tag)
        r, doc = convert(src, '--to', 'torchscript', '-o', dest)
        if res.check(r.returncode == 0, '%s full model exports to TorchScript without --dtype' % tag, r.stderr):
            got = torch.jit.load(dest)
            want = torch.load(src, weights_only=False)
            gsd, wsd = got.state_dict(), want.state_dict()
            res.check(list(gsd) == list(wsd), '%s TorchScript keeps the names' % tag, '%s vs %s' % (list(gsd), list(wsd)))
            for k, v in wsd.items():
                if k in gsd:
                    res.check(same_tensor(gsd[k], v), '%s TorchScript %s is the source tensor (dtype %s)' % (tag, k, v.dtype),
                              '%s %s' % (gsd[k].dtype, tuple(gsd[k].shape)))
            # Forward in float32, as a CPU runs it: the module torch.jit.load gives against torch's own.
            x = torch.randn(5, 10)
            with torch.no_grad():
                y_got = got.float()(x)
                y_want = want.float()(x)
            res.check(torch.equal(y_got, y_want), '%s TorchScript module computes as torch\'s (in float32)' % tag,
                      'max diff %g' % (y_got - y_want).abs().max().item())
            res.check(any(str(dtype).replace('torch.', '') in n for n in (doc or {}).get('notes', [])),
                      '%s export says it writes the module in the weights\' dtype' % tag, repr(doc.get('notes')))
        # `ckpt predict --export-torchscript` writes with the same code: the weights' own dtype too.
        dest = os.path.join(out, 'seq_%s_predict_ts.pt' % tag)
        r = run('predict', src, '--export-torchscript', dest)
        if res.check(r.returncode == 0, '%s predict --export-torchscript without --dtype' % tag, r.stderr):
            gsd, wsd = torch.jit.load(dest).state_dict(), torch.load(src, weights_only=False).state_dict()
            res.check(all(k in gsd and same_tensor(gsd[k], v) for k, v in wsd.items()),
                      '%s predict\'s TorchScript holds the source tensors in their dtype' % tag)
    # Weights mixing float16 and float32: refused at plan time, naming --dtype; nothing written.
    mixed = {'0.weight': torch.randn(4, 10).half(), '0.bias': torch.randn(4).half(),
             '2.weight': torch.randn(3, 4), '2.bias': torch.randn(3)}
    src = os.path.join(out, 'mixed.pth')
    torch.save(mixed, src)
    dest = os.path.join(out, 'mixed_ts.pt')
    r = run('convert', src, '--to', 'torchscript', '-o', dest)
    res.check(r.returncode == 1 and '--dtype' in r.stderr and 'float16' in r.stderr and not os.path.exists(dest),
              'mixed float16/float32 weights are refused for TorchScript, offering --dtype', r.stderr + r.stdout)
    r = run('convert', src, '--to', 'torchscript', '--dtype', 'float32', '-o', dest)
    if res.check(r.returncode == 0, 'mixed weights export with --dtype float32', r.stderr):
        gsd = torch.jit.load(dest).state_dict()
        res.check(all(gsd[k].dtype == torch.float32 and torch.equal(gsd[k], v.float()) for k, v in mixed.items()),
                  'mixed weights cast to float32 as torch casts them')

    # --- 2. A signal during the write leaves the output folder as it was -------------------------
    big = collections.OrderedDict(('layer%d.weight' % i, torch.randn(1024, 1024)) for i in range(48))
    big_src = os.path.join(out, 'big.pth')
    torch.save(big, big_src)
    del big
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        folder = os.path.join(out, 'sig_%d' % sig)
        os.makedirs(folder)
        dest = os.path.join(folder, 'big_sd.pth')
        p = subprocess.Popen([ckpt, 'convert', big_src, '--to', 'state-dict', '-o', dest],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        seen = None
        deadline = time.time() + 120
        while time.time() < deadline and p.poll() is None:
            temps = [n for n in os.listdir(folder) if n.startswith('.big_sd.pth.')]
            if temps and os.path.getsize(os.path.join(folder, temps[0])) > (1 << 20):
                seen = temps[0]
                break
            time.sleep(0.002)
        if not res.check(seen is not None, 'signal %d: the temporary file appears while writing' % sig,
                         'the process ended first (%s)' % p.poll()):
            p.wait()
            continue
        p.send_signal(sig)
        rc = p.wait(timeout=60)
        left = os.listdir(folder)
        res.check(rc == -sig, 'signal %d ends ckpt convert as the signal does' % sig, 'exit %s' % rc)
        res.check(left == [], 'signal %d leaves the output folder as it was' % sig, repr(left))
    os.remove(big_src)

    # --- 3. EMA weights get the model's edits; optimizer state keeps its dtype -------------------
    model = trained_simple()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    model(torch.randn(8, 10)).sum().backward()
    opt.step()
    model.eval()
    dp = collections.OrderedDict(('module.' + k, v.clone()) for k, v in model.state_dict().items())
    ema = collections.OrderedDict(('module.' + k, v.clone() * 0.9 if v.is_floating_point() else v.clone())
                                  for k, v in model.state_dict().items())
    src = os.path.join(out, 'dp_ema.pth')
    torch.save({'epoch': 3, 'model_state_dict': dp, 'ema_state_dict': ema, 'optimizer_state_dict': opt.state_dict()},
               src)
    dest = os.path.join(out, 'dp_ema_ck.pth')
    r, doc = convert(src, '--to', 'checkpoint', '--strip-prefix', 'module.', '--dtype', 'float16',
                     '--drop', '*.num_batches_tracked', '-o', dest)
    if res.check(r.returncode == 0 and doc is not None, 'EMA checkpoint converts with edits and a cast', r.stderr):
        got = load_weights_only(dest)
        want_keys = [k[len('module.'):] for k in dp if not k.endswith('num_batches_tracked')]
        res.check(list(got['model_state_dict']) == want_keys, 'model keys stripped and dropped')
        res.check(list(got['ema_state_dict']) == want_keys, 'EMA keys get the same edits as the model\'s',
                  repr(list(got['ema_state_dict'])))
        for k in want_keys:
            src_t = ema['module.' + k]
            want_t = src_t.half() if src_t.is_floating_point() else src_t
            g = got['ema_state_dict'].get(k)
            res.check(g is not None and same_tensor(g, want_t), 'EMA %s cast as torch\'s .half()' % k,
                      str(g.dtype) if g is not None else 'missing')
        # The EMA swaps into the written model, as training code does it.
        half = SimpleNN().half()
        try:
            half.load_state_dict(got['ema_state_dict'], strict=False)
            missing = set(half.state_dict()) - set(got['ema_state_dict'])
            res.check(missing == {'bn.num_batches_tracked'}, 'EMA loads into the model', repr(missing))
        except RuntimeError as e:
            res.check(False, 'EMA loads into the model', str(e)[:300])
        res.check(any(c.startswith('ema_state_dict (with the model\'s edits') for c in doc['carried']),
                  'the plan says the EMA got the model\'s edits', repr(doc['carried']))
        # Optimizer state as the source holds it (float32): load_state_dict casts it to the params' dtype.
        so, go = opt.state_dict(), got['optimizer_state_dict']
        for pid, st in so['state'].items():
            for name, t in st.items():
                if torch.is_tensor(t):
                    g = go['state'].get(pid, {}).get(name)
                    res.check(g is not None and same_tensor(g, t), 'optimizer %s/%s keeps its dtype' % (pid, name))
        o2 = torch.optim.Adam(half.parameters(), lr=1e-3)
        o2.load_state_dict(go)
        res.check(o2.state and all(s['exp_avg'].dtype == torch.float16 for s in o2.state.values()),
                  'torch casts the kept optimizer state to the half parameters on load')
        res.check(any('keeps its dtype' in c for c in doc['carried']), 'the plan says the optimizer keeps its dtype',
                  repr(doc['carried']))
    # An EMA with other keys than the model's: carried as it is, with a warning.
    other = collections.OrderedDict(('shadow.' + k, v.clone()) for k, v in model.state_dict().items())
    src = os.path.join(out, 'dp_other_ema.pth')
    torch.save({'model_state_dict': dp, 'ema_state_dict': other}, src)
    dest = os.path.join(out, 'dp_other_ema_ck.pth')
    r, doc = convert(src, '--to', 'checkpoint', '--strip-prefix', 'module.', '-o', dest)
    if res.check(r.returncode == 0 and doc is not None, 'checkpoint with a mismatched EMA converts', r.stderr):
        got = load_weights_only(dest)
        res.check(list(got['ema_state_dict']) == list(other), 'a mismatched EMA is carried as it is')
        res.check(any('ema_state_dict' in w and 'not the model\'s' in w for w in doc['warnings']),
                  'a warning says the EMA did not get the edits', repr(doc['warnings']))

    # --- 4. weights -> safetensors -> weights keeps the order; the round trip converts on ------------
    model = trained_simple()
    src = os.path.join(out, 'simple.pth')
    torch.save(model.state_dict(), src)
    st = os.path.join(out, 'simple.safetensors')
    back = os.path.join(out, 'simple_back.pth')
    r1, _ = convert(src, '--to', 'safetensors', '-o', st)
    r2, _ = convert(st, '--to', 'state-dict', '-o', back)
    if res.check(r1.returncode == 0 and r2.returncode == 0, 'state dict round trip through safetensors',
                 r1.stderr + r2.stderr):
        tensors, meta, _ = read_safetensors(st)
        res.check(json.loads(meta.get('checkpoint_studio.key_order', '[]')) == list(model.state_dict()),
                  'safetensors records the state dict\'s order', repr(meta))
        # The order is the tool's bookkeeping, not the model's metadata: info's Metadata does not list
        # it (--json's __metadata__ stays the file's own, whole).
        ri = run('info', st)
        res.check(ri.returncode == 0 and 'key_order' not in ri.stdout and "__metadata__/format: 'pt'" in ri.stdout,
                  'info does not list the recorded key order as metadata', ri.stdout + ri.stderr)
        got = load_weights_only(back)
        res.check(list(got) == list(model.state_dict()), 'the round trip keeps the state dict\'s order',
                  repr(list(got)))
        res.check(all(same_tensor(got[k], v) for k, v in model.state_dict().items()), 'the round trip keeps the values')
        # The tool's own output converts on as the source does, and computes the same in torch.
        fm_src, fm_back = os.path.join(out, 'simple_fm.pth'), os.path.join(out, 'simple_back_fm.pth')
        ra, _ = convert(src, '--to', 'full-model', '-o', fm_src)
        rb, _ = convert(back, '--to', 'full-model', '-o', fm_back)
        if res.check(ra.returncode == 0 and rb.returncode == 0, 'the round trip converts to a full model',
                     ra.stderr + rb.stderr):
            x = torch.randn(4, 10)
            with torch.no_grad():
                ya = torch.load(fm_src, weights_only=False).eval()(x)
                yb = torch.load(fm_back, weights_only=False).eval()(x)
            res.check(torch.equal(ya, yb), 'the round trip\'s full model computes as the source\'s')
        ts = os.path.join(out, 'simple_back_ts.pt')
        rt, _ = convert(back, '--to', 'torchscript', '-o', ts)
        res.check(rt.returncode == 0 and os.path.exists(ts), 'the round trip exports to TorchScript', rt.stderr)
        # The safetensors file itself: its recorded order is the model's, so the layers are not
        # re-sorted by name (bn before fc1) and it converts as the source does.
        fm_st = os.path.join(out, 'simple_st_fm.pth')
        rs, _ = convert(st, '--to', 'full-model', '-o', fm_st)
        if res.check(rs.returncode == 0, 'the tool\'s own safetensors converts to a full model', rs.stderr):
            x = torch.randn(4, 10)
            with torch.no_grad():
                ya = torch.load(fm_src, weights_only=False).eval()(x)
                ys = torch.load(fm_st, weights_only=False).eval()(x)
            res.check(torch.equal(ya, ys), 'the safetensors file\'s full model computes as the source\'s')

    # A recorded order that does not name each tensor exactly once (another tool's, an edited header)
    # is not used: the file's own order stands, and the file still reads.
    def write_st(path, tensors, meta):
        header, body = collections.OrderedDict(), b''
        header['__metadata__'] = meta
        for name, t in tensors.items():
            raw = t.contiguous().view(torch.uint8).numpy().tobytes()
            header[name] = {'dtype': 'F32', 'shape': list(t.shape), 'data_offsets': [len(body), len(body) + len(raw)]}
            body += raw
        text = json.dumps(header, separators=(',', ':')).encode()
        text += b' ' * ((8 - len(text) % 8) % 8)
        with open(path, 'wb') as f:
            f.write(len(text).to_bytes(8, 'little') + text + body)
    plain = collections.OrderedDict((k, torch.randn(2)) for k in ('a', 'b', 'c'))
    for i, order in enumerate((['c', 'a'], ['c', 'a', 'a'], ['c', 'a', 'x'], 'not a list', ['c', 'b', 'a'])):
        path = os.path.join(out, 'order_%d.safetensors' % i)
        write_st(path, plain, {'format': 'pt', 'checkpoint_studio.key_order': json.dumps(order)})
        dest = os.path.join(out, 'order_%d.pth' % i)
        r, _ = convert(path, '--to', 'state-dict', '-o', dest)
        want = order if order == ['c', 'b', 'a'] else ['a', 'b', 'c']
        ok = r.returncode == 0 and list(load_weights_only(dest)) == want
        res.check(ok, 'a recorded order %r is %s' % (order, 'used' if want == order else 'ignored'), r.stderr)

    # --- 6. the plan says where the weights came from ---------------------------------------------
    src = os.path.join(out, 'under_model.pth')
    torch.save({'model': model.state_dict(), 'epoch': 1}, src)
    r, doc = convert(src, '--to', 'checkpoint', '-o', os.path.join(out, 'under_model_ck.pth'))
    if res.check(r.returncode == 0 and doc is not None, 'a checkpoint with weights under \'model\' converts', r.stderr):
        res.check(any("model_state_dict" in c and "'model'" in c for c in doc['carried']),
                  'the plan says the weights moved from \'model\' to \'model_state_dict\'', repr(doc['carried']))
        got = load_weights_only(os.path.join(out, 'under_model_ck.pth'))
        res.check(list(got['model_state_dict']) == list(model.state_dict()), 'the weights are under model_state_dict')
    r = run('convert', src, '--to', 'inference', '-o', os.path.join(out, 'under_model_inf.pth'))
    res.check(r.returncode == 0 and "moved from 'model'" in r.stdout, 'the text plan says the weights moved',
              r.stdout + r.stderr)

    # --- 7. --preprocessing checked against the model's inputs -----------------------------------
    src = os.path.join(out, 'simple.pth')
    n_in = model.fc1.in_features  # what torch says the model takes
    cases = [
        ({'mean': [0.5] * 3, 'std': [0.2] * 3}, '%d input features' % n_in),
        ({'mean': [0.5] * n_in, 'std': [0.0] * n_in}, 'std holds zero'),
    ]
    for i, (prep, expect) in enumerate(cases):
        r, doc = convert(src, '--to', 'inference', '--preprocessing', json.dumps(prep),
                         '-o', os.path.join(out, 'prep_%d.pth' % i))
        res.check(r.returncode == 0 and doc is not None and any(expect in w for w in doc['warnings']),
                  '--preprocessing %r is warned about (%s)' % (prep, expect),
                  r.stderr + repr(doc and doc['warnings']))
    for i, prep in enumerate(({'mean': [0.5] * n_in, 'std': [0.2] * n_in}, {'mean': [0.5], 'std': [0.2]})):
        r, doc = convert(src, '--to', 'inference', '--preprocessing', json.dumps(prep),
                         '-o', os.path.join(out, 'prep_ok_%d.pth' % i))
        res.check(r.returncode == 0 and doc is not None and
                  not any('preprocessing' in w for w in doc['warnings']),
                  '--preprocessing that fits the model is not warned about', r.stderr + repr(doc and doc['warnings']))

    # --- 8. --json on failure --------------------------------------------------------------------
    bad = os.path.join(out, 'not_a_checkpoint.pth')
    with open(bad, 'wb') as f:
        f.write(b'this is not a checkpoint')
    r = run('convert', bad, '--to', 'state-dict', '--json', '-o', os.path.join(out, 'bad_sd.pth'))
    try:
        doc = json.loads(r.stdout)
    except ValueError:
        doc = None
    res.check(r.returncode == 1 and isinstance(doc, dict) and doc.get('input') == bad and doc.get('error'),
              'a failed input is printed as JSON with its error, exit status 1', '%d %r' % (r.returncode, r.stdout))
    good = os.path.join(out, 'simple.pth')
    r = run('convert', good, bad, '--to', 'safetensors', '--json', '--out-dir', os.path.join(out, 'json_mix'))
    try:
        doc = json.loads(r.stdout)
    except ValueError:
        doc = None
    res.check(r.returncode == 1 and isinstance(doc, list) and len(doc) == 2 and doc[0].get('input') == good and
              'result' in doc[0] and doc[1].get('input') == bad and doc[1].get('error'),
              'several inputs: the failure is printed in its place', '%d %r' % (r.returncode, r.stdout[:400]))
    r = run('convert', good, bad, '--to', 'state-dict', '-o', os.path.join(out, 'one.pth'), '--json')
    try:
        doc = json.loads(r.stdout)
    except ValueError:
        doc = None
    res.check(r.returncode == 1 and isinstance(doc, dict) and 'error' in doc,
              'an option error is printed as JSON', '%d %r' % (r.returncode, r.stdout))

    return res.finish()


if __name__ == '__main__':
    sys.exit(main())
