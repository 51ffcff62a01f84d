"""Datasets: Stanford Cars in the layouts users have, class folders, Fashion-MNIST, a verified uint8 cache."""
