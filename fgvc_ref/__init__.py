"""fgvc_ref: a from-scratch PyTorch reference of a refined fine-grained classification recipe.

Each technique lives in its own module, its docstring is its specification, and its test file
proves it equal to the torch/torchvision twin (see README.md and docs/recipe.md).
"""

__version__ = "0.1.0"
