"""The demo's config is SAM3's shipped RF100-VL fine-tuning config, restated (the sam3 wheel ships no
configs): equal to it everywhere but the keys marked "demo"."""

import yaml
from conftest import ROOT
from support.sam3_configs import require_configs

from tasks.lib.run import sam3_config

SHIPPED = "roboflow_v100_full_ft_100_images"
DEMO_KEYS = {  # what the demo changes, and to what
    "roboflow_train.num_images": 4,
    "trainer.skip_saving_ckpts": False,
    "trainer.skip_first_val": False,
    "trainer.max_epochs": 2,
    "trainer.val_epoch_freq": 1,
    "trainer.logging.log_freq": 1,
    "launcher.gpus_per_node": 1,
    "submitit.timeout_hour": 1,
    "submitit.use_cluster": False,
    "submitit.cpus_per_task": 1,
    "submitit.job_array.num_tasks": 3,
    "all_roboflow_supercategories": ["13-lkc01", "-grccs", "actions"],
}


def flat(node, prefix=""):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from flat(value, f"{prefix}{key}.")
    else:
        yield prefix.rstrip("."), node


def test_the_demo_is_sams_shipped_config_but_for_the_demo_keys():
    shipped = dict(flat(yaml.safe_load(sam3_config.find_config(SHIPPED, [require_configs()]).read_text())))
    demo = dict(flat(yaml.safe_load((ROOT / "demo" / "demo_rf100vl_cpu.yaml").read_text())))
    assert set(demo) == set(shipped)
    differ = {key for key in shipped if shipped[key] != demo[key]}
    assert differ == set(DEMO_KEYS), sorted(differ ^ set(DEMO_KEYS))
    assert {key: demo[key] for key in DEMO_KEYS} == DEMO_KEYS
