#!/usr/bin/env python3
"""Write the example checkpoints shipped with Checkpoint Studio.

Usage:  /usr/bin/python3 resources/examples/generate_examples.py

Trains the seed text's SimpleNN (10 -> 50 -> 2) for a few epochs on a small,
deterministic synthetic two-class data set with Adam, then saves it the way the
seed's ModelSaver does, next to this script:

  simple_nn_checkpoint.pth               ModelSaver.save_checkpoint layout
  simple_nn_inference.pth                ModelSaver.save_for_inference layout
  simple_nn_inference_metadata.json      ... and its JSON sidecar
  simple_nn_full_model.pth               torch.save(model) (pickles simple_nn.SimpleNN)

Two deliberate departures from the seed, for reproducible files: the timestamp
is a fixed string rather than datetime.now(), and pytorch_version is stored as a
plain str (the seed's torch.__version__ would pickle a TorchVersion object).
"""
import json
import os
import sys

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.normpath(os.path.join(HERE, '..', '..', 'tests', 'fixtures')))

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.optim as optim  # noqa: E402

from simple_nn import SimpleNN  # noqa: E402

TIMESTAMP = '2026-11-28T12:00:00'
PYTORCH_VERSION = str(torch.__version__)


class ModelSaver:
    """The seed's utility, with the timestamp fixed for reproducibility."""

    @staticmethod
    def save_checkpoint(model, optimizer, epoch, train_loss, val_loss,
                        model_config, filepath, additional_info=None):
        checkpoint = {
            'epoch': epoch,
            'model_state_dict': model.state_dict(),
            'optimizer_state_dict': optimizer.state_dict(),
            'train_loss': train_loss,
            'val_loss': val_loss,
            'model_config': model_config,
            'timestamp': TIMESTAMP,
            'pytorch_version': PYTORCH_VERSION,
            'additional_info': additional_info or {},
        }
        torch.save(checkpoint, filepath)

    @staticmethod
    def save_for_inference(model, model_config, preprocessing_params,
                           filepath, class_names=None):
        model.eval()
        package = {
            'model_state_dict': model.state_dict(),
            'model_config': model_config,
            'preprocessing': preprocessing_params,
            'class_names': class_names,
            'timestamp': TIMESTAMP,
            'pytorch_version': PYTORCH_VERSION,
        }
        torch.save(package, filepath)

        # Save metadata as JSON
        metadata = {k: v for k, v in package.items() if k != 'model_state_dict'}
        with open(filepath.replace('.pth', '_metadata.json'), 'w') as f:
            json.dump(metadata, f, indent=2, default=str)


def make_data(n=256):
    """Two classes separated by a fixed hyperplane, features with varied mean/scale."""
    g = torch.Generator().manual_seed(2026)
    scale = torch.linspace(0.5, 2.0, 10)
    shift = torch.linspace(-1.0, 1.0, 10)
    x = torch.randn(n, 10, generator=g) * scale + shift
    w = torch.randn(10, generator=g)
    y = (((x - shift) / scale) @ w > 0).long()
    return x, y


def main():
    torch.manual_seed(0)
    torch.set_num_threads(1)

    x, y = make_data()
    x_train, y_train, x_val, y_val = x[:200], y[:200], x[200:], y[200:]
    mean = x_train.mean(dim=0)
    std = x_train.std(dim=0)
    x_train_n = (x_train - mean) / std
    x_val_n = (x_val - mean) / std

    model_config = {'input_size': 10, 'hidden_size': 50, 'output_size': 2}
    model = SimpleNN(**model_config)
    optimizer = optim.Adam(model.parameters(), lr=0.001)
    loss_fn = nn.CrossEntropyLoss()

    num_epochs, batch_size = 5, 20
    for epoch in range(num_epochs):
        model.train()
        total = 0.0
        for i in range(0, len(x_train_n), batch_size):
            xb, yb = x_train_n[i:i + batch_size], y_train[i:i + batch_size]
            optimizer.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(xb)
        train_loss = total / len(x_train_n)
        model.eval()
        with torch.no_grad():
            logits = model(x_val_n)
            val_loss = loss_fn(logits, y_val).item()
            val_accuracy = (logits.argmax(dim=1) == y_val).float().mean().item()
    optimizer.zero_grad(set_to_none=True)

    ModelSaver.save_checkpoint(
        model, optimizer, epoch, train_loss, val_loss, model_config,
        os.path.join(HERE, 'simple_nn_checkpoint.pth'),
        additional_info={
            'dataset': 'synthetic-2class',
            'num_train_samples': len(x_train),
            'num_val_samples': len(x_val),
            'batch_size': batch_size,
            'optimizer': 'Adam',
            'val_accuracy': val_accuracy,
        })

    ModelSaver.save_for_inference(
        model, model_config,
        {'mean': mean.tolist(), 'std': std.tolist()},
        os.path.join(HERE, 'simple_nn_inference.pth'),
        class_names=['Negative', 'Positive'])

    torch.save(model, os.path.join(HERE, 'simple_nn_full_model.pth'))


if __name__ == '__main__':
    main()
