#!/usr/bin/env python3
"""`ckpt convert --to torchscript --dtype` judged by PyTorch: the file torch.jit.load reads holds
what torch's own `scripted.to(dtype)` holds (every parameter and buffer, bit for bit, in the same
dtype; integer buffers and plain tensor attributes as they were), an RNN's `_flat_weights` are its
parameters (no stale float32 copies: the data records weigh what torch.jit.save of the cast module
weighs), and it computes what the cast module computes. GRU, LSTM and a TransformerEncoder with a
MultiheadAttention, from a TorchScript file and from a state dict loaded into a TorchScript
architecture, in bfloat16, float16 and float64. torch 1.13's CPU has no float16 matrix product:
there both torch's module and the written one must refuse to run. The models are made here, into a
temporary folder."""
import argparse
import os
import subprocess
import sys
import tempfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
from results import Results  # noqa: E402


class GRUCls(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(50, 16, padding_idx=0)
        self.rnn = nn.GRU(16, 16, num_layers=2, bidirectional=True, batch_first=True)
        self.out = nn.Linear(32, 3)

    def forward(self, x):
        h, _ = self.rnn(self.emb(x))
        return self.out(h[:, -1])


class LSTMCls(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(50, 16, padding_idx=0)
        self.rnn = nn.LSTM(16, 12, num_layers=2, bidirectional=True, batch_first=True)
        self.ln = nn.LayerNorm(24)
        self.out = nn.Linear(24, 3)

    def forward(self, x):
        h, _ = self.rnn(self.emb(x))
        return self.out(self.ln(h[:, -1]))


class BufferCls(nn.Module):
    """A non-persistent buffer (state_dict() leaves it out; Module.to casts it), an integer one and
    a plain tensor attribute (Module.to leaves both), from the TorchScript file only: a state dict
    does not hold the non-persistent buffer. Its first entry is an integer buffer (position_ids),
    which tells nothing of the input; its first floating weight, the Embedding's, says it takes
    token ids, and the written module is run on them."""
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(50, 8, padding_idx=0)
        self.lstm = nn.LSTM(8, 8, batch_first=True)
        self.register_buffer('scale', torch.full((1,), 0.5), persistent=False)
        self.register_buffer('position_ids', torch.arange(8))
        self.plain = torch.linspace(0, 1, 5)

    def forward(self, x):
        h, _ = self.lstm(self.emb(x))
        return h[:, -1] * self.scale


class TxCls(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(50, 32, padding_idx=0)
        layer = nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, batch_first=True)
        self.enc = nn.TransformerEncoder(layer, 2)
        self.attn = nn.MultiheadAttention(32, 4, batch_first=True)
        self.gru = nn.GRU(32, 32, num_layers=2, bidirectional=True)  # held, unused: its _flat_weights still count
        self.out = nn.Linear(32, 5)

    def forward(self, x):
        h = self.enc(self.emb(x))
        h, _ = self.attn(h, h, h)
        return self.out(h.mean(1))


MODELS = {'gru': GRUCls, 'lstm': LSTMCls, 'transformer': TxCls, 'buffers': BufferCls}
DTYPES = {'bfloat16': torch.bfloat16, 'float16': torch.float16, 'float64': torch.float64}
SAMPLE = torch.tensor([[1, 5, 9, 3], [7, 2, 0, 4]])


def data_bytes(path):
    """Total size of the archive's tensor records (data/), and how many there are."""
    with zipfile.ZipFile(path) as z:
        sizes = [i.file_size for i in z.infolist() if '/data/' in i.filename]
    return sum(sizes), len(sizes)


def weights(m):
    out = dict(m.named_parameters())
    out.update(dict(m.named_buffers()))
    return out


def same_bits(a, b):
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if a.is_floating_point():
        return torch.equal(a.contiguous().view(torch.uint8), b.contiguous().view(torch.uint8)) if a.numel() else True
    return torch.equal(a, b)


def run(cmd):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def forward(m):
    try:
        with torch.no_grad():
            return m(SAMPLE), None
    except Exception as e:  # noqa: BLE001 - torch's own refusal is what is compared
        return None, str(e).strip().splitlines()[-1]


def rnn_modules(m):
    return [(n, s) for n, s in m.named_modules() if s.original_name in ('GRU', 'LSTM')]


def check_written(res, where, out, ref, ref_path, dtype_name):
    got = torch.jit.load(out)
    want = weights(ref)
    have = weights(got)
    res.check(sorted(have) == sorted(want), where + ': the same parameters and buffers as torch\'s',
              'extra %s, missing %s' % (sorted(set(have) - set(want)), sorted(set(want) - set(have))))
    bad = [n for n in want if n in have and not same_bits(have[n], want[n])]
    res.check(not bad, where + ': every parameter and buffer is torch\'s scripted.to(%s), bit for bit' % dtype_name,
              ', '.join('%s %s vs %s' % (n, have[n].dtype, want[n].dtype) for n in bad[:5]))
    if hasattr(ref, 'plain'):
        res.check(got.plain.dtype == ref.plain.dtype and torch.equal(got.plain, ref.plain),
                  where + ': a plain tensor attribute stays as Module.to leaves it', str(got.plain.dtype))
    for name, rnn in rnn_modules(got):
        names = list(rnn._flat_weights_names)
        flat = list(rnn._flat_weights)
        stale = [n for n, t in zip(names, flat) if t.dtype != getattr(rnn, n).dtype
                 or t.data_ptr() != getattr(rnn, n).data_ptr()]
        res.check(not stale, where + ': %s._flat_weights are its parameters' % name, ', '.join(stale[:4]))
    res.check(data_bytes(out) == data_bytes(ref_path), where + ': no stale copies (data records as torch.jit.save '
              'of the cast module)', '%s vs torch %s (bytes, records)' % (data_bytes(out), data_bytes(ref_path)))
    y_ref, ref_error = forward(ref)
    y_got, got_error = forward(got)
    if ref_error is None:
        res.check(got_error is None and y_got.dtype == y_ref.dtype and torch.equal(y_got, y_ref),
                  where + ': the forward pass gives torch\'s output', got_error or str((y_got - y_ref).abs().max()))
    else:
        # float16 on torch 1.13's CPU: torch's own cast module cannot run; the file behaves alike.
        res.check(got_error is not None, where + ': torch\'s cast module cannot run here (%s); neither can the file'
                  % ref_error, 'the file ran')
    return ref_error


def torchscript_cases(res, ckpt, tmp):
    cannot_run = set()
    for name, cls in MODELS.items():
        torch.manual_seed(1)
        model = cls().eval()
        real = os.path.join(tmp, '%s_real.pt' % name)
        torch.jit.script(model).save(real)
        sd = os.path.join(tmp, '%s_sd.pth' % name)
        torch.save(model.state_dict(), sd)
        torch.manual_seed(2)
        arch = os.path.join(tmp, '%s_arch.pt' % name)
        torch.jit.script(cls().eval()).save(arch)
        for dtype_name, dtype in DTYPES.items():
            ref = torch.jit.load(real).to(dtype)
            ref_path = os.path.join(tmp, '%s_ref_%s.pt' % (name, dtype_name))
            torch.jit.save(ref, ref_path)
            cases = [('TorchScript file', [ckpt, 'convert', real])]
            if cls is not BufferCls:
                cases.append(('state dict into --arch', [ckpt, 'convert', sd, '--arch', arch]))
            for case, cmd in cases:
                where = '%s %s %s' % (name, case, dtype_name)
                out = os.path.join(tmp, 'out_%s_%s_%d.pt' % (name, dtype_name, len(case)))
                r = run(cmd + ['--to', 'torchscript', '--dtype', dtype_name, '-o', out])
                if not res.check(r.returncode == 0, where + ': converted', r.stderr.strip()):
                    continue
                torch_cannot_run = check_written(res, where, out, ref, ref_path, dtype_name)
                if torch_cannot_run:
                    cannot_run.add(dtype_name)
                if torch_cannot_run:
                    res.check('was not run: LibTorch' in r.stdout, where + ': says the written module was not run',
                              r.stdout)
                else:
                    res.check('ran a sample of shape [1, 4] in %s' % dtype_name in r.stdout,
                              where + ': says it ran the written module', r.stdout)
    print('dtypes torch %s cannot run on this CPU: %s' % (torch.__version__, ', '.join(sorted(cannot_run)) or 'none'))


def refusal_case(res, ckpt, tmp):
    """A module whose list attribute holds copies of its RNN's weights (not the weights): Python's
    .to(bfloat16) leaves the copies as float32 and the module cannot run; the export must say so
    rather than write a module that fails."""
    torch.manual_seed(3)
    s = torch.jit.script(GRUCls().eval())
    s.rnn._flat_weights = [w.clone() for w in s.rnn._flat_weights]
    src = os.path.join(tmp, 'copies.pt')
    s.save(src)
    _, torch_error = forward(torch.jit.load(src).to(torch.bfloat16))
    res.check(torch_error is not None, 'copies: torch\'s own .to(bfloat16) module does not run', 'it ran')
    out = os.path.join(tmp, 'copies_bf16.pt')
    r = run([ckpt, 'convert', src, '--to', 'torchscript', '--dtype', 'bfloat16', '-o', out])
    res.check(r.returncode != 0 and 'does not run in bfloat16' in r.stderr and out in r.stderr,
              'copies: the export refuses a module that no longer runs, naming the file', r.stderr.strip() or r.stdout)
    res.check(not os.path.exists(out), 'copies: nothing is left at the output path')
    left = [f for f in os.listdir(tmp) if f.startswith('copies_bf16') or f.startswith('.copies_bf16')]
    res.check(not left, 'copies: no temporary file is left', ', '.join(left))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--ckpt', required=True)
    ap.add_argument('--fixtures', required=False)
    args = ap.parse_args()
    res = Results()
    with tempfile.TemporaryDirectory() as tmp:
        torchscript_cases(res, args.ckpt, tmp)
        refusal_case(res, args.ckpt, tmp)
    return res.finish()


if __name__ == '__main__':
    sys.exit(main())
