"""Prints torch's listing of a TorchScript file's modules as JSON: {name: original_name}.

For the project's own fixtures only (torch.jit.load runs the archive's code).
Usage: torch_modules.py FILE
"""
import json
import sys

import torch

module = torch.jit.load(sys.argv[1])
print(json.dumps({name: m.original_name for name, m in module.named_modules()}))
