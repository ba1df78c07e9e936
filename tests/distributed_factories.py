"""Model factories for the distributed tests: picklable functions the Ray workers call.

The tests register this module with cloudpickle by value, so workers need not import it.
"""

from __future__ import annotations

import os
import time


def toy():
    from motif_widgets import load_model

    return load_model("toy-induction")


def toy_dies_once(marker: str):
    """The toy model; the first forward pass in any worker kills that worker process
    (SIGKILL-like os._exit) and leaves `marker`, so the restarted worker runs normally."""
    model = toy()

    def die_first_time(module, args):
        try:
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return None
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        os._exit(1)

    model.embed.register_forward_pre_hook(die_first_time)  # run_with_hooks calls forward, not the module
    return model


def toy_slow(seconds: float):
    """The toy model with every forward pass delayed by `seconds` (to interrupt a run midway)."""
    model = toy()
    model.embed.register_forward_pre_hook(lambda module, args: time.sleep(seconds))
    return model


def broken():
    raise RuntimeError("this factory cannot load its model")


def token_prompts():
    """Token-id prompts both the toy model (vocabulary 1,000) and SmolLM2 can read."""
    import numpy as np

    from motif_widgets.prompts import repeated_token_probes, token_prompt

    rng = np.random.default_rng(1)
    texts = [token_prompt(rng.integers(1, 1000, size=n).tolist(), id=f"rand-{n}") for n in (12, 20, 27, 35, 41, 50, 57, 63)]
    return repeated_token_probes(4, 12) + texts
