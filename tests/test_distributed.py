"""Several processes (torchrun, gloo on CPU) train the run one process trains: batch slices, per-image
augmentation seeds, exact gathered evaluation, gradient sums, rank-0-only outputs, resuming."""
import re
import subprocess
import sys

import pytest
import torch
import torch.multiprocessing as mp
from PIL import Image
from torch.utils.data import BatchSampler, RandomSampler

from conftest import REPO, repo_copy, run_script
from distributed_worker import collectives_worker
from vlprompt.config.setup import get_cfg
from vlprompt.data.datum import Datum
from vlprompt.data.manager import DatasetWrapper, train_loader
from vlprompt.data.sharding import ShardedBatchSampler
from vlprompt.data.transforms import build_transform
from vlprompt.utils import distributed as dist


def test_shard_bounds_cover_every_unit_once_in_order():
    for n in range(0, 12):
        for world in (1, 2, 3, 5):
            bounds = [dist.shard_bounds(n, world, r) for r in range(world)]
            assert bounds[0][0] == 0 and bounds[-1][1] == n
            assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
            sizes = [b - a for a, b in bounds]
            assert max(sizes) - min(sizes) <= 1


def _epoch(world: int, rank: int, per_image_seeds: bool, unit: int = 1, seed: int = 0):
    torch.manual_seed(seed)
    batches = BatchSampler(RandomSampler(range(26)), 8, drop_last=False)
    return list(ShardedBatchSampler(batches, unit, world, rank, per_image_seeds))


def test_slices_of_every_rank_make_the_single_process_batches():
    torch.manual_seed(0)
    single = list(BatchSampler(RandomSampler(range(26)), 8, drop_last=False))
    assert _epoch(1, 0, False) == single  # world size 1 without seeds: exactly the published batches
    for world in (2, 3):
        slices = [_epoch(world, r, False) for r in range(world)]
        assert [sum((s[b] for s in slices), []) for b in range(len(single))] == single


def test_per_image_seeds_do_not_depend_on_the_world_size():
    one = [item for batch in _epoch(1, 0, True) for item in batch]
    for world in (2, 3):
        many = [item for b in range(4) for r in range(world) for item in _epoch(world, r, True)[b]]
        assert many == one
    assert len({seed for _, seed in one}) == len(one)  # every image of the epoch has its own seed
    assert _epoch(1, 0, True, seed=1) != one  # and they change with the run's seed


def test_episodic_tasks_stay_whole_on_one_rank():
    torch.manual_seed(0)
    batches = [list(range(i * 12, i * 12 + 12)) for i in range(3)]  # 3 batches of 4 tasks x 3 images
    for rank in range(3):
        for batch in ShardedBatchSampler(batches, unit=3, world=3, rank=rank):
            assert len(batch) in (3, 6) and batch[0] % 3 == 0  # 4 tasks over 3 ranks: 2, 1, 1


def test_seeded_items_are_reproducible_and_leave_the_generator_alone(tmp_path):
    path = tmp_path / "a.png"
    Image.fromarray(torch.randint(0, 255, (30, 40, 3), dtype=torch.uint8).numpy()).save(path)
    tfm = build_transform(get_cfg(["INPUT.SIZE", "(16, 16)", "INPUT.TRANSFORMS",
                                   "['random_resized_crop', 'random_flip', 'normalize']"]), is_train=True)
    ds = DatasetWrapper([Datum(str(path), 0, "a")], tfm)
    torch.manual_seed(0)
    state = torch.get_rng_state()
    a = ds[(0, 123)]["img"]
    assert torch.equal(torch.get_rng_state(), state)
    torch.manual_seed(99)
    assert torch.equal(ds[(0, 123)]["img"], a)
    assert not torch.equal(ds[(0, 124)]["img"], a)


def test_per_image_seeds_make_batches_independent_of_workers(dtd_root):
    from vlprompt.data.manager import DataManager

    cfg = get_cfg(["DATASET.NAME", "DescribableTextures", "DATASET.ROOT", dtd_root, "DATASET.NUM_SHOTS", "2",
                   "INPUT.SIZE", "(16, 16)", "INPUT.TRANSFORMS", "['random_resized_crop', 'random_flip', 'normalize']",
                   "DATALOADER.NUM_WORKERS", "0"])
    items = DataManager(cfg).dataset.train_x
    tfm = build_transform(cfg, is_train=True)

    def epoch(workers: int) -> list[torch.Tensor]:
        torch.manual_seed(5)
        batches = BatchSampler(RandomSampler(range(len(items))), 8, drop_last=True)
        return [b["img"] for b in train_loader(DatasetWrapper(items, tfm), batches, workers, per_image_seeds=True)]

    a, b = epoch(0), epoch(2)
    assert len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b))


def test_collectives_are_exact_for_uneven_and_empty_slices(tmp_path):
    """gather_rows, sum_gradients, step_stats, broadcast_object and split_rows in 3 gloo processes."""
    out = mp.Manager().dict()
    mp.spawn(collectives_worker, args=(3, f"file://{tmp_path / 'store'}", out), nprocs=3)
    for rank in range(3):
        gathered, a, b, c, means, total, failed, obj, rows_equal, w_grad = out[rank]
        assert gathered == [0, 1, 2, 20, 21]  # no padding, rank order, rank 1's empty slice
        assert a == [6.0, 6.0] and b == [1.0, 1.0, 1.0] and c is None
        assert total == 5 and failed is True
        assert means == {"loss": pytest.approx((0 * 3 + 2 * 2) / 5), "acc": pytest.approx(50.0 * 5 / 5)}
        assert list(means) == ["loss", "acc"] and obj == {"from": 0}
        # split_rows: every rank gets all rows; the gradient is the one of the sum of the ranks' losses
        assert rows_equal and w_grad == (6 * torch.arange(5.0) @ torch.arange(15.0).view(5, 3)).tolist()


@pytest.mark.slow
def test_two_processes_train_what_one_trains_and_resume(tmp_path):
    """CoOp, CoCoOp, MaPLe, MetaProto (episodes) and InstancePrompt (per-step picks and instance prompts): 1 vs 2
    processes (gloo), and a 2-process run killed and resumed."""
    trainers = ["CoOp", "CoCoOp", "MaPLe", "MetaProto", "InstancePrompt"]
    p = subprocess.run([sys.executable, "-m", "vlprompt.testing.ddp_check", "--kill", "--workdir", str(tmp_path),
                        "--trainers", *trainers], cwd=REPO, capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    rows = [line for line in p.stdout.splitlines() if line.startswith("| ") and "True" in line]
    assert {r.split("|")[1].strip() for r in rows} == set(trainers) and len(rows) == 7
    log = (tmp_path / "MetaProto_2proc" / "log.txt").read_text()
    assert "Distributed: 2 processes (gloo)" in log
    assert log.count("epoch [1/2] batch [1/3]") == 1  # only rank 0 logs
    assert re.findall(r"\* total: (\d+)", log) == re.findall(r"\* total: (\d+)",
                                                            (tmp_path / "MetaProto_1proc" / "log.txt").read_text())


@pytest.mark.slow
def test_ngpu_runs_a_script_with_torchrun(dtd_root, tiny_clip, tmp_path):
    work = repo_copy(tmp_path / "repo")
    overrides = ["MODEL.BACKBONE.NAME", tiny_clip["vit_s"], "INPUT.SIZE", "(32, 32)", "TRAINER.COOP.PREC", "fp32",
                 "OPTIM.MAX_EPOCH", "1", "DATALOADER.NUM_WORKERS", "0", "DATALOADER.TEST.BATCH_SIZE", "5"]
    run_script(work, "scripts/coop/base2new_train.sh", "dtd", "1", "vit_b16_ep50_ctxv1", "2", *overrides,
               data=dtd_root, NGPU="2", OMP_NUM_THREADS="1")
    out = work / "output/base2new/train_base/dtd/shots_2/CoOp/vit_b16_ep50_ctxv1/seed1"
    log = (out / "log.txt").read_text()
    assert "Distributed: 2 processes" in log
    test_size = int(re.search(r"# test\s+(\d+)", log).group(1))
    assert f"* total: {test_size}" in log  # 5-image eval batches over 2 processes: uneven, nothing duplicated
    assert (out / "results.json").is_file() and (out / "prompt_learner" / "model.pth.tar-1").is_file()
