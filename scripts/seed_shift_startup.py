"""IPython start-up file for ``make seeds``: shift every explicit integer seed by a fixed offset.

``scripts/seeds.py`` copies this file into a temporary ``IPYTHONDIR`` and sets
``MLF_SEED_SHIFT``; a notebook kernel started with that environment runs it before the first
cell. From then on every integer seed handed to Python's, NumPy's or PyTorch's generators, by
the chapter or by ``mlf``, is ``seed + shift``; ``None`` (fresh entropy) is left alone. Nothing
in the chapters changes: they seed as they always do, and get other random numbers.
"""


def _install(shift: int) -> None:
    import random

    import numpy as np

    def shifted(seed):
        if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
            return int(seed) + shift
        return seed

    # Python: random.Random.__init__ calls self.seed, so overriding seed covers both
    class Random(random.Random):
        def seed(self, a=None, version=2):
            super().seed(shifted(a), version)

    module_seed = random.seed
    random.Random = Random
    random.seed = lambda a=None, version=2: module_seed(shifted(a), version)

    # NumPy: the legacy global seed, the Generator factory and the legacy RandomState
    class RandomState(np.random.RandomState):
        def __init__(self, seed=None):
            super().__init__(shifted(seed))

        def seed(self, seed=None):
            super().seed(shifted(seed))

    np_seed, np_default_rng = np.random.seed, np.random.default_rng
    np.random.seed = lambda seed=None: np_seed(shifted(seed))
    np.random.default_rng = lambda seed=None: np_default_rng(shifted(seed))
    np.random.RandomState = RandomState

    try:
        import torch
    except ImportError:
        return
    torch_seed = torch.manual_seed

    def manual_seed(seed):
        return torch_seed(shifted(seed))

    class Generator(torch.Generator):
        def manual_seed(self, seed):
            return super().manual_seed(shifted(seed))

    torch.manual_seed = torch.random.manual_seed = manual_seed
    torch.Generator = Generator


def _shift_from_environment() -> None:
    import os

    text = os.environ.get("MLF_SEED_SHIFT", "0")
    try:
        shift = int(text)
    except ValueError:
        raise ValueError(f"MLF_SEED_SHIFT must be an integer, got {text!r}") from None
    if shift:
        _install(shift)


_shift_from_environment()
del _install, _shift_from_environment
