#!/usr/bin/env python3
"""Models, pictures and arrays for the prediction fixes a review found, written by real torch 1.13
into --out, with expected.json holding torch's own outputs for them. Used by the prediction pane's
test (tests/views/tst_predictreview.cpp) and `ckpt predict`'s (tests/cli/test_predict_review_vs_torch.py).

- Softmax / LogSoftmax without dim (torch's implicit rule, _get_softmax_dim: dim 0 for a 0-, 1- or
  3-d input, else 1), and a spec's {"type": "Softmax"};
- TorchScript files ending in Sigmoid / Softmax (probabilities as they are);
- a pickled ResNet-like model (residual blocks) whose forward a pickle does not carry;
- a CNN that takes any size, bare and in a package that states a crop size;
- MNIST MLPs (Flatten + Linear(784) pickled; a state dict package with image_size 28) on a PNG;
- a 16-bit grey PNG; a package whose preprocessing switches a step off (grayscale: False)."""
import argparse
import json
import os
import zlib
import struct
import warnings

import numpy as np
import torch
from PIL import Image
from torch import nn

torch.set_grad_enabled(False)
warnings.filterwarnings('ignore', message='Implicit dimension choice')


class Block(nn.Module):
    """A residual block: its forward adds its input to what its layers give."""

    def __init__(self, c):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)

    def forward(self, x):
        return self.relu(self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x))))) + x)


class Unit(nn.Module):
    """The same block under a name that says nothing: found by its channels (8 in, 8 out)."""

    def __init__(self, c):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1)
        self.act = nn.ReLU()
        self.conv2 = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
        return self.conv2(self.act(self.conv1(x))) + x


class TinyResNet(nn.Module):
    def __init__(self, block):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu = nn.ReLU()
        self.layer1 = nn.Sequential(block(8), block(8))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        return self.fc(self.flatten(self.avgpool(self.layer1(self.relu(self.bn1(self.conv1(x)))))))


class Net(nn.Module):
    """A plain MLP class: its forward is its children in order, but the file cannot say so."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 6)
        self.act = nn.Tanh()
        self.fc2 = nn.Linear(6, 3)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


def cnn():
    m = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                      nn.Conv2d(8, 16, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))
    m[1].running_mean.uniform_(-.5, .5)
    m[1].running_var.uniform_(.5, 2)
    return m.eval()


CNN_SPEC = [{"type": "Conv2d", "name": "0", "padding": 1}, {"type": "BatchNorm2d", "name": "1"}, {"type": "ReLU"},
            {"type": "MaxPool2d", "kernel_size": 2}, {"type": "Conv2d", "name": "4"}, {"type": "ReLU"},
            {"type": "AdaptiveAvgPool2d", "output_size": 1}, {"type": "Flatten"}, {"type": "Linear", "name": "8"}]


def png16_grey(path, values):
    """A 16-bit greyscale PNG (PIL cannot write one)."""
    h, w = values.shape
    raw = b''.join(b'\x00' + values[y].astype('>u2').tobytes() for y in range(h))

    def chunk(t, d):
        return struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d) & 0xffffffff)

    with open(path, 'wb') as f:
        f.write(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 16, 0, 0, 0, 0)) +
                chunk(b'IDAT', zlib.compress(raw)) + chunk(b'IEND', b''))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--out', required=True)
    out = ap.parse_args().out
    os.makedirs(out, exist_ok=True)
    p = lambda name: os.path.join(out, name)  # noqa: E731
    expected = {}
    torch.manual_seed(0)
    rng = np.random.RandomState(0)

    # Softmax and LogSoftmax without dim: torch's implicit rule.
    rows = torch.tensor([[1., 2, 3, 4], [0.5, -1, 2, 0]])
    sm = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3), nn.Softmax()).eval()
    torch.save(sm, p('softmax_nodim.pth'))
    expected['softmax_nodim'] = {'rows': rows.tolist(), 'output': sm(rows).tolist()}
    # A 3-d output: the implicit dim is 0, over the batch.
    seq = nn.Sequential(nn.Conv1d(2, 3, 1), nn.LogSoftmax()).eval()
    torch.save(seq, p('logsoftmax_nodim_conv1d.pth'))
    x3 = torch.randn(2, 2, 5)
    np.save(p('conv1d_x.npy'), x3.numpy())
    expected['logsoftmax_nodim_conv1d'] = {'output': seq(x3).tolist()}
    # A spec's {"type": "Softmax"} over a state dict.
    lin = nn.Sequential(nn.Linear(4, 3)).eval()
    torch.save(lin.state_dict(), p('linear_sd.pth'))
    expected['spec_softmax'] = {
        'spec': [{"type": "Linear", "name": "0"}, {"type": "Softmax"}],
        'rows': rows.tolist(),
        'output': torch.softmax(lin(rows), 1).tolist()}

    # A TorchScript model of one input size (Flatten into a Linear of 4*16*16 features): only
    # --input-shape 3,16,16 tells ckpt predict what to give it.
    fixed = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 16 * 16, 5)).eval()
    torch.jit.save(torch.jit.script(fixed), p('fixed16_ts.pt'))
    pic16 = rng.randint(0, 256, (16, 16, 3)).astype(np.uint8)
    Image.fromarray(pic16).save(p('pic16.png'))
    x16 = torch.from_numpy(pic16).permute(2, 0, 1).float().div(255).unsqueeze(0)  # ToTensor
    row16 = torch.randn(1, 3 * 16 * 16)
    expected['fixed16_ts'] = {'picture_output': fixed(x16).tolist(), 'row': row16[0].tolist(),
                              'row_output': fixed(row16.reshape(1, 3, 16, 16)).tolist()}

    # TorchScript ending in Sigmoid (multi-label) or Softmax: probabilities as they are.
    ml = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 5), nn.Sigmoid()).eval()
    torch.jit.save(torch.jit.script(ml), p('sigmoid_ts.pt'))
    torch.save(ml, p('sigmoid_full.pth'))
    r8 = torch.arange(1., 9.).reshape(1, 8) / 8
    expected['sigmoid_ts'] = {'rows': r8.tolist(), 'output': ml(r8).tolist()}
    smts = nn.Sequential(nn.Linear(8, 4), nn.Softmax(dim=1)).eval()
    torch.jit.save(torch.jit.script(smts), p('softmax_ts.pt'))
    expected['softmax_ts'] = {'rows': r8.tolist(), 'output': smts(r8).tolist()}
    logits_ts = nn.Sequential(nn.Linear(8, 4)).eval()
    torch.jit.save(torch.jit.script(logits_ts), p('logits_ts.pt'))
    expected['logits_ts'] = {'rows': r8.tolist(), 'output': logits_ts(r8).tolist()}

    # Residual models pickled: the result cannot be right, and must say so.
    for name, block in [('resnet_block', Block), ('resnet_unit', Unit)]:
        m = TinyResNet(block).eval()
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.running_mean.uniform_(-.3, .3)
                mod.running_var.uniform_(.5, 2)
        torch.save({'model': m, 'classes': ['c%d' % i for i in range(10)]}, p(name + '.pth'))
        xr = torch.rand(1, 3, 16, 16)
        np.save(p(name + '_x.npy'), xr.numpy())
        expected[name] = {'output': m(xr).tolist()}
    net = Net().eval()
    torch.save(net, p('net_full.pth'))
    expected['net_full'] = {'rows': rows.tolist(), 'output': net(rows).tolist()}
    plain = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3)).eval()
    torch.save(plain, p('plain_full.pth'))
    expected['plain_full'] = {'rows': rows.tolist(), 'output': plain(rows).tolist()}

    # A CNN that takes any size: bare, and a package that states a 24-pixel crop.
    c = cnn()
    torch.save(c, p('cnn_any.pth'))
    pre = {'mean': [0.485, 0.456, 0.406], 'std': [0.229, 0.224, 0.225], 'resize': 28, 'crop_size': 24,
           'grayscale': False, 'to_bgr': None, 'random_horizontal_flip': 0.5}
    torch.save({'model_state_dict': c.state_dict(), 'preprocessing': pre, 'class_names': ['k%d' % i for i in range(10)],
                'architecture': CNN_SPEC}, p('cnn_crop_pkg.pth'))
    for side in (20, 24):
        xs = torch.rand(1, 3, side, side, dtype=torch.float64).float()
        row = xs.flatten().tolist()
        mean = torch.tensor(pre['mean']).view(1, 3, 1, 1)
        std = torch.tensor(pre['std']).view(1, 3, 1, 1)
        expected['cnn_any_%d' % side] = {'row': row, 'output': c(xs).tolist()}
        expected['cnn_crop_pkg_%d' % side] = {'row': row, 'output': c((xs - mean) / std).tolist()}

    # MNIST MLPs on a 28x28 grey PNG and a colour JPEG-free photo (PNG).
    torch.manual_seed(12)
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 10)).eval()
    torch.save({'model': mlp, 'classes': [str(i) for i in range(10)], 'mean': [0.1307], 'std': [0.3081]},
               p('mnist_mlp_full.pth'))
    mlp2 = nn.Sequential(nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 10)).eval()
    torch.save({'model_state_dict': mlp2.state_dict(), 'model_config': {'input_size': 784, 'output_size': 10},
                'class_names': [str(i) for i in range(10)],
                'preprocessing': {'mean': [0.1307], 'std': [0.3081], 'image_size': 28}}, p('mnist_mlp_pkg.pth'))
    Image.fromarray(rng.randint(0, 256, (28, 28)).astype(np.uint8)).save(p('digit.png'))
    Image.fromarray(rng.randint(0, 256, (40, 50, 3)).astype(np.uint8)).save(p('photo.png'))
    for pic in ('digit.png', 'photo.png'):
        im = Image.open(p(pic)).convert('L')
        if im.size != (28, 28):
            im = im.resize((28, 28), Image.BILINEAR)
        x = torch.from_numpy(np.asarray(im, dtype=np.float32) / 255.0)[None, None]
        x = (x - 0.1307) / 0.3081
        expected['mnist_mlp_full_' + pic] = {'output': mlp(x).tolist()}
        expected['mnist_mlp_pkg_' + pic] = {'output': mlp2(x.flatten(1)).tolist()}

    # A 16-bit grey PNG for the any-size CNN's grey twin.
    grey = nn.Sequential(nn.Conv2d(1, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3)).eval()
    torch.save(grey, p('grey_any.pth'))
    v16 = (np.arange(64).reshape(8, 8) * 1000).astype(np.uint16)
    png16_grey(p('grey16.png'), v16)
    x16 = torch.from_numpy(v16.astype(np.float64) / 65535.0).float()[None, None]
    expected['grey16'] = {'output': grey(x16).tolist(), 'pil_mode': Image.open(p('grey16.png')).mode}

    # Fewer class names than outputs.
    few = nn.Sequential(nn.Linear(4, 5)).eval()
    torch.save({'model': few, 'classes': ['a', 'b', 'c']}, p('fewnames.pth'))
    expected['fewnames'] = {'rows': rows.tolist(), 'output': few(rows).tolist()}

    with open(p('expected.json'), 'w') as f:
        json.dump(expected, f)


if __name__ == '__main__':
    main()
