"""A trainer that only says which checkpoint SAM3's model builder would load (trainer._target_ in a test
config; SAM3's train.py instantiates the trainer with _recursive_=False, so the model node arrives as
config). Stands in for SAM3's Trainer only where the test's subject is the launcher's hand-over of the
verified checkpoint: the loopback Hub serves a fake sam3.pt that no real model could load, and the
full-size model needs a GPU."""

import os


class CheckpointProbe:
    def __init__(self, model, **_trainer_keys):
        self.path, self.from_hub = model["checkpoint_path"], model.get("load_from_HF", True)

    def run(self):
        state = "present" if os.path.isfile(self.path) else "MISSING"
        print(f"would load {self.path} ({state}), load_from_HF={self.from_hub}", flush=True)
