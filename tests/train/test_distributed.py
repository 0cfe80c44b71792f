"""Two processes (gloo, CPU) give the loss and the gradients of one process on the same global
batch, to 1e-6: negatives are gathered with gradients flowing back to every process."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from vtbench.losses import LOCAL, LOSSES, build_loss
from vtbench.models import build_model
from vtbench.train import Objective, checkpoint
from vtbench.train import distributed

B, N, CLIP_LEN, D, VOCAB, WORDS = 4, 4, 3, 8, 20, 5
HYPER = {"tempclr": {"n_pairs": 3, "n_orders": 5}, "cali-nce": {"embed_dim": 16}}  # tempclr: all orders, no sampling


def global_batch() -> dict:
    """A batch in the format of docs/ARCHITECTURE.md section 4, with padding and unpaired captions."""
    g = torch.Generator().manual_seed(1)
    n_len, m_len = torch.tensor([4, 3, 4, 2]), torch.tensor([4, 4, 3, 3])
    video_mask = torch.arange(N) < n_len[:, None]
    text_mask = torch.arange(N) < m_len[:, None]
    pair = torch.minimum(torch.arange(N).repeat(B, 1), (n_len - 1)[:, None]).masked_fill(~text_mask, -1)
    pair[1, 0] = -1
    candidates = (torch.arange(N)[:, None] + torch.tensor([0, 1])).repeat(B, 1, 1)
    return {
        "video": torch.randn(B, N, CLIP_LEN, D, generator=g, dtype=torch.float64),
        "video_mask": video_mask, "text_mask": text_mask, "pair": pair,
        "text": torch.randint(1, VOCAB, (B, N, WORDS), generator=g) * text_mask[..., None],
        "candidates": candidates.masked_fill(candidates >= m_len[:, None, None], -1),
    }


def objective(method: str) -> Objective:
    torch.manual_seed(0)
    model = build_model("frames", input_dim=D, vocab_size=VOCAB, embed_dim=16, hidden_dim=24, word_dim=8)
    return Objective(model, build_loss(method, **HYPER.get(method, {}))).double()


def part(batch: dict, rank: int, world: int) -> dict:
    rows = slice(rank * B // world, (rank + 1) * B // world)
    return {k: v[rows] for k, v in batch.items()}


def worker(rank: int, world: int, init_file: str, out: str, methods: list[str]) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    ctx = distributed.Context(rank, world, rank, torch.device("cpu"), distributed.DistributedGather(rank, world))
    results = {}
    for method in methods:
        module = objective(method)
        engine = distributed.wrap(module, ctx)
        loss, _ = engine(part(global_batch(), rank, world), ctx.gather)
        (loss * world).backward()  # as the trainer does: DDP averages, the shares add up
        total = distributed.all_reduce_sum(loss, ctx)
        results[method] = {"loss": total, "grads": {n: p.grad.clone() for n, p in module.named_parameters()}}
        del engine  # its reducer holds the group: gone before the group is (one CI run aborted in teardown)
    torch.save(results, f"{out}.{rank}")
    dist.barrier()  # neither process tears the group down while the other still talks through it
    dist.destroy_process_group()


def single(method: str, gather=LOCAL) -> dict:
    module = objective(method)
    loss, _ = module(global_batch(), gather)
    loss.backward()
    return {"loss": loss.detach(), "grads": {n: p.grad.clone() for n, p in module.named_parameters()}}


def test_two_processes_equal_one_on_the_same_global_batch(tmp_path):
    methods = list(LOSSES)
    out = str(tmp_path / "result")
    mp.spawn(worker, args=(2, str(tmp_path / "init"), out, methods), nprocs=2, join=True)
    for rank in (0, 1):
        results = torch.load(f"{out}.{rank}")
        for method in methods:
            ref, got = single(method), results[method]
            assert abs(got["loss"].item() - ref["loss"].item()) < 1e-6, method
            for name, grad in ref["grads"].items():
                assert torch.allclose(got["grads"][name], grad, rtol=1e-6, atol=1e-6), f"{method}: {name}"
                assert grad.abs().sum() > 0 or "log_scale" in name, f"{method}: {name} got no gradient"


def test_world_size_one_is_the_plain_formula(tmp_path):
    """A real one-process group: DistributedGather gives LOCAL's loss and gradients (and LOCAL
    gives each loss's plain formula: tests/losses/test_objectives.py)."""
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'init'}", rank=0, world_size=1)
    try:
        gather = distributed.DistributedGather(0, 1)
        for method in LOSSES:
            ref, got = single(method), single(method, gather)
            assert got["loss"].item() == pytest.approx(ref["loss"].item(), rel=1e-12), method
            for name, grad in ref["grads"].items():
                assert torch.allclose(got["grads"][name], grad, rtol=1e-10, atol=1e-12), f"{method}: {name}"
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("torchrun", path=os.path.dirname(sys.executable)) is None, reason="needs torchrun")
def test_torchrun_training_matches_one_process(tmp_path):
    args = ["--method", "vt-twins", "--set", "steps=4", "--set", "batch_size=4", "--set", "device=cpu", "--set", "log_every=2",
            "--set", "progress=false", "--set", "save_every=2"]
    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    ddp = subprocess.run([torchrun, "--standalone", "--nproc_per_node", "2", "-m", "vtbench", "train", *args,
                          "--out", str(tmp_path / "ddp")], check=True, env=env, timeout=300, capture_output=True, text=True)
    assert ddp.stdout.count("trained vt-twins for 4 steps") == 1, ddp.stdout  # rank 0 says it, once
    subprocess.run([sys.executable, "-m", "vtbench", "train", *args, "--out", str(tmp_path / "one")],
                   check=True, env=env, timeout=300, capture_output=True)
    a, b = checkpoint.load(tmp_path / "ddp"), checkpoint.load(tmp_path / "one")
    for key, value in b["model"].items():
        assert torch.allclose(a["model"][key], value, atol=1e-5), key
    losses = [[json.loads(line)["loss"] for line in (tmp_path / run / "metrics.jsonl").read_text().splitlines()]
              for run in ("ddp", "one")]
    assert losses[0] == pytest.approx(losses[1], rel=1e-5) and len(losses[0]) == 2


TWICE = """
import sys
import torch.distributed as dist
from vtbench.train import make_config, train
for k in range(2):  # as a comparison or an ablation does
    config = make_config("infonce", "quick", {"steps": 2, "batch_size": 4, "device": "cpu", "progress": False,
                                              "save_every": 2, "log_every": 1}, out=f"{sys.argv[1]}/run{k}")
    train(config)
    assert dist.is_initialized()  # kept for the next one (and a caller's own group is never destroyed)
print("trained twice")
"""


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("torchrun", path=os.path.dirname(sys.executable)) is None, reason="needs torchrun")
def test_torchrun_trains_twice_in_one_process(tmp_path):
    """train() destroyed the process group it found or started; the next train() in the process
    started it again, and the two processes deadlocked (a comparison hung at its second run)."""
    script = tmp_path / "twice.py"
    script.write_text(TWICE)
    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    done = subprocess.run([torchrun, "--standalone", "--nproc_per_node", "2", str(script), str(tmp_path)],
                          env=env, timeout=240, capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.count("trained twice") == 2, done.stderr[-2000:]


def test_torchrun_refuses_one_gpu_for_every_process(monkeypatch):
    """Under torchrun each process takes cuda:LOCAL_RANK; device=cuda:1 would send them all to one
    GPU (NCCL: duplicate GPU), so it is an error naming the setting, raised before any group is joined."""
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("LOCAL_RANK", "0")
    with pytest.raises(ValueError, match=r"device='cuda:1' under torchrun"):
        distributed.setup("cuda:1")
    assert not torch.distributed.is_initialized()
