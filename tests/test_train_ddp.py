"""torchrun with 2 CPU processes (gloo) matches the 1-process run with the same global batch."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import torch

# The worker builds the tiny data and model of tests/helpers.py in every process and here.
WORKER = textwrap.dedent('''
    import sys
    import torch
    from luatorch_port.train import TrainConfig, fit
    from luatorch_port.train.distributed import init_from_env, shutdown

    from helpers import tiny_data as data, tiny_model as model

    def run(out_dir, ctx=None):
        kwargs = {} if ctx is None else {"dist_ctx": ctx}
        config = TrainConfig(batch_size=8, learning_rate=0.05, max_epoch=2, n_classes=3,
                             save_every=100)
        return fit(model(), data(42, 1), data(10, 2), config,
                   generator=torch.Generator().manual_seed(7), device="cpu", out_dir=out_dir,
                   save_model_fn=None, **kwargs)

    if __name__ == "__main__":
        torch.set_num_threads(1)
        ctx, _ = init_from_env(torch.device("cpu"))
        result = run(sys.argv[1], ctx)
        if ctx.is_main:
            torch.save({"state": result.model.state_dict(), "history": result.history,
                        "world": ctx.world_size}, sys.argv[2])
        shutdown()
''')


@pytest.mark.slow
def test_two_gloo_processes_match_one(tmp_path):
    worker = tmp_path / "ddp_worker.py"
    worker.write_text(WORKER)
    out = tmp_path / "ddp.pt"
    tests = os.path.dirname(os.path.abspath(__file__))  # the workers import helpers
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [tests, os.environ.get("PYTHONPATH")]))}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(worker), str(tmp_path / "run2"), str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=env,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ddp = torch.load(out, weights_only=True)
    assert ddp["world"] == 2

    sys.path.insert(0, str(tmp_path))
    try:
        import ddp_worker
        single = ddp_worker.run(tmp_path / "run1")
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("ddp_worker", None)

    for key, value in single.model.state_dict().items():
        torch.testing.assert_close(ddp["state"][key], value, rtol=1e-4, atol=1e-5)
    for a, b in zip(ddp["history"], single.history):
        assert a["train_acc"] == pytest.approx(b["train_acc"], abs=1e-9)
        assert a["val_acc"] == pytest.approx(b["val_acc"], abs=1e-9)
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-4)
    # rank 0 alone wrote the run folder
    assert sorted(os.listdir(tmp_path / "run2")) == ["checkpoint.pt", "confusion.txt", "val.log"]
