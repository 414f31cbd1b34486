"""Base-to-new on another dataset, cross-dataset transfer (ImageNet -> the other 10) and domain
generalisation (ImageNet -> V2/Sketch/A/R), end to end through the scripts on synthetic roots."""
import gzip
import json
import re

import pytest

from conftest import DATA, repo_copy, run_script
from vlprompt import results

pytestmark = pytest.mark.slow
TARGETS = ["caltech101", "oxford_pets", "stanford_cars", "oxford_flowers", "food101", "fgvc_aircraft", "sun397",
           "dtd", "eurosat", "ucf101", "imagenetv2", "imagenet_sketch", "imagenet_a", "imagenet_r"]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return repo_copy(tmp_path_factory.mktemp("work") / "repo")


def overrides(tiny_clip):
    return ["MODEL.BACKBONE.NAME", tiny_clip["rn"], "INPUT.SIZE", "(64, 64)", "TRAINER.COOP.PREC", "fp32",
            "OPTIM.MAX_EPOCH", "1", "DATALOADER.NUM_WORKERS", "0", "VERBOSE", "False"]


def run(work, data, script, *argv):
    return run_script(work, script, *argv, data=data).stdout


def test_base_to_new_on_eurosat(workdir, image_roots, tiny_clip):
    o = overrides(tiny_clip)
    run(workdir, image_roots, "scripts/coop/base2new_train.sh", "eurosat", "1", "vit_b16_ep50_ctxv1", "4", *o)
    run(workdir, image_roots, "scripts/coop/base2new_test.sh", "eurosat", "1", "vit_b16_ep50_ctxv1", "4", "1", *o)
    base = (workdir / "output/base2new/train_base/eurosat/shots_4/CoOp/vit_b16_ep50_ctxv1/seed1/log.txt").read_text()
    new = (workdir / "output/base2new/test_new/eurosat/shots_4/CoOp/vit_b16_ep50_ctxv1/seed1/log.txt").read_text()
    golden = json.load(gzip.open(DATA / "golden" / "EuroSAT.json.gz", "rt"))["test_lists"]
    assert f"* total: {len(golden['base']):,}" in base  # the test images of the 5 base classes
    assert f"* total: {len(golden['new']):,}" in new  # and of the 5 new classes
    groups = results.collect(str(workdir / "output/base2new"))
    g = groups[("eurosat", "shots_4/CoOp/vit_b16_ep50_ctxv1")]
    assert list(g.base) == [1] and list(g.new) == [1]


def test_imagenet_to_other_datasets_and_variants(workdir, image_roots, tiny_clip):
    o = overrides(tiny_clip)
    run(workdir, image_roots, "scripts/coop/xd_train.sh", "1", "vit_b16_ep50_ctxv1", "1", *o)
    src = workdir / "output/imagenet/CoOp/vit_b16_ep50_ctxv1_1shots/seed1"
    assert (src / "prompt_learner" / "model.pth.tar-1").is_file()
    assert "* total: 1,020" in (src / "log.txt").read_text()  # ImageNet's val set, 1000 classes
    for target in TARGETS:
        run(workdir, image_roots, "scripts/coop/xd_test.sh", target, "1", "vit_b16_ep50_ctxv1", "1", "1", *o)
        log = (workdir / f"output/evaluation/CoOp/vit_b16_ep50_ctxv1_1shots/{target}/seed1/log.txt").read_text()
        assert ('Loading weights to prompt_learner from "output/imagenet/CoOp/vit_b16_ep50_ctxv1_1shots/seed1/'
                'prompt_learner/model.pth.tar-1"') in log
        assert re.search(r"^\* accuracy: [0-9.]+%$", log, re.M), target
    log_a = (workdir / "output/evaluation/CoOp/vit_b16_ep50_ctxv1_1shots/imagenet_a/seed1/log.txt").read_text()
    assert "# classes  200" in log_a and "* total: 200" in log_a
